/// Permission bits given in octal on the command line (`serve --control-socket-mode 0660`).
public enum FileModeOption {
    /// An octal mode from `0600` to `0666`: the owner (the node) keeps read and write; no execute, set-id or sticky
    /// bits; at most 4 digits.
    public static func socketMode(_ text: String, option: String) throws(ModelCacheError) -> UInt16 {
        let t = text.trimmingASCIISpaces()
        guard !t.isEmpty, t.utf8.count <= 4, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }), let mode = UInt16(t, radix: 8) else {
            throw .invalidArgument("\(option) '\(text)' is not an octal mode: give e.g. 0600 (owner only) or 0660 (owner and group)")
        }
        guard mode & 0o600 == 0o600, mode & ~0o666 == 0 else {
            throw .invalidArgument("\(option) '\(text)' must keep read and write for the owner and set no execute or special bits: from 0600 to 0666")
        }
        return mode
    }
}
