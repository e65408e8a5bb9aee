// The library's version, reported by `ladon --version` and the edge service's `Server` header.

/// Version of this package (semantic versioning; the weights-file and packet formats carry their own versions).
public enum LadonVersion {
    public static let current = "0.3.0"
}
