import HTTPTypes
import Hummingbird
import NIOCore

extension HubUpstream.Answer {
    /// This answer relayed to a client (the Hub endpoint, the registry mirror): its status, the headers `keep` lets
    /// through (asked with the lower-cased name), and its body unless the request was a HEAD.
    func relayed(head: Bool, keep: (String) -> Bool) -> Response {
        var h = HTTPFields()
        for (n, v) in headers where keep(n.lowercased()) {
            if let name = HTTPField.Name(n) { h.append(HTTPField(name: name, value: v)) }
        }
        let status = HTTPResponse.Status(code: self.status)
        if head { return Response(status: status, headers: h) }
        h[.contentLength] = String(body.count)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
