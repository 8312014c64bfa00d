/// A resource as one node sees it: `common` merged under the resource's own sections, resource-level
/// `device`/`disk`/`meta-disk`/`address` inherited by the `on` sections, the node's own `on`
/// section as `local` and the other one as `peer`.
///
/// Equality and hashing compare the configuration only; `file` and `location` (and the locations
/// inside) record where it was written and are ignored. So a resource re-read after an edit that
/// changed only comments or layout compares equal, and so does the re-parsed ``rendered()`` output.
public struct ResolvedResource: Sendable, Hashable {
    public var name: String
    /// The file the `resource` section is in.
    public var file: String
    /// Where the `resource` keyword is.
    public var location: SourceLocation
    /// This node's `on` section.
    public var local: HostConfig
    /// The other `on` section; `nil` when the resource has only one.
    public var peer: HostConfig?
    public var net: NetOptions
    public var disk: DiskOptions
    public var startup: StartupOptions
    /// Handler name (`fence-peer`, `split-brain`, ...) to shell command.
    public var handlers: [String: String]
    /// The options in effect per section (`net`, `disk`, `startup`, `handlers`, `options`; every key
    /// is present), common's first unless the resource overrides them, then the resource's own.
    public var sections: [String: [ConfigOption]]

    public init(
        name: String, file: String, location: SourceLocation, local: HostConfig, peer: HostConfig?,
        net: NetOptions, disk: DiskOptions, startup: StartupOptions, handlers: [String: String],
        sections: [String: [ConfigOption]]
    ) {
        self.name = name
        self.file = file
        self.location = location
        self.local = local
        self.peer = peer
        self.net = net
        self.disk = disk
        self.startup = startup
        self.handlers = handlers
        self.sections = sections
    }

    /// The section names of ``sections``, in the order they are printed.
    public static let sectionNames = ["net", "disk", "startup", "handlers", "options"]

    public static func == (lhs: ResolvedResource, rhs: ResolvedResource) -> Bool {
        lhs.name == rhs.name && lhs.local == rhs.local && lhs.peer == rhs.peer && lhs.net == rhs.net
            && lhs.disk == rhs.disk && lhs.startup == rhs.startup && lhs.handlers == rhs.handlers
            && lhs.sections == rhs.sections
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(local)
        hasher.combine(peer)
        hasher.combine(net)
        hasher.combine(disk)
        hasher.combine(startup)
        hasher.combine(handlers)
        hasher.combine(sections)
    }
}
