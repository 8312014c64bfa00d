/// The files a running resource keeps in its run directory.
public struct RunDirectory: Sendable {
    public let path: String
    public let resource: String

    public init(path: String, resource: String) {
        self.path = path
        self.resource = resource
    }

    public var nbdSocket: String { "\(path)/\(resource).sock" }
    public var controlSocket: String { "\(path)/\(resource).ctl" }
    public var pidFile: String { "\(path)/\(resource).pid" }
    public var logFile: String { "\(path)/\(resource).log" }

    /// The libnbd URI of the export.
    public var nbdURI: String { "nbd+unix:///\(resource)?socket=\(nbdSocket)" }
}
