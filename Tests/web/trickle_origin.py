"""A slow origin on loopback for the browser test: serves the files of a directory with HEAD, Range (one range),
an ETag, and each response body trickled at RATE bytes per second, so a download lasts long enough to watch."""
import http.server
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    rate = 1 << 20

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.respond(head=True)

    def do_GET(self):
        self.respond(head=False)

    def respond(self, head):
        path = os.path.join(self.root, os.path.basename(self.path.split("?")[0]))
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        first, last, status = 0, size - 1, 200
        spec = self.headers.get("Range", "")
        if spec.startswith("bytes=") and "," not in spec:
            a, _, b = spec[6:].partition("-")
            if a:
                first, last = int(a), min(int(b) if b else size - 1, size - 1)
            elif b:
                first = max(0, size - int(b))
            if first > last:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{size}-{int(os.path.getmtime(path))}"')
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if head:
            return
        piece = max(4096, self.rate // 20)
        with open(path, "rb") as f:
            f.seek(first)
            left = last - first + 1
            try:
                while left > 0:
                    data = f.read(min(piece, left))
                    self.wfile.write(data)
                    left -= len(data)
                    time.sleep(len(data) / self.rate)
            except (BrokenPipeError, ConnectionResetError):
                pass


def main():
    port, root, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    Handler.root, Handler.rate = root, rate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
