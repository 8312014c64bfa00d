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
    /// What the daemon attached as the resource's block device (links, kernel device, helper), so
    /// that whatever a crash left behind can be found and undone.
    public var deviceState: String { "\(path)/\(resource).device" }
    /// The FUSE mount of the nbdfuse+loop attachment, and the file in it that the loop device is bound to.
    public var fuseMount: String { "\(path)/\(resource).fuse" }
    public var fuseFile: String { "\(fuseMount)/\(resource)" }
    public var fusePIDFile: String { "\(path)/\(resource).nbdfuse.pid" }

    /// The libnbd URI of the export.
    public var nbdURI: String { "nbd+unix:///\(resource)?socket=\(nbdSocket)" }
}
