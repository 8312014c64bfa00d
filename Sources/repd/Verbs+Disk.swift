import ArgumentParser
import ControlProtocol

struct Detach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Let go of the backing disk on purpose: the node goes Diskless and serves through its peer.",
        discussion: """
            For example before pulling or replacing a disk. A Primary may detach only while its peer is connected and UpToDate (its reads and writes then go to the peer); the only UpToDate disk of a pair is never detached. The disk's bitmap and superblock are written as it goes.
            Example: repd detach r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.detach), common: common, resource: resource) }
    }
}

struct Attach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take the backing disk (back) into use: after a detach, a disk failure, or with a new disk.",
        discussion: """
            Opens the resource's disk and metadata as `repd up` does. The same disk gets a bitmap resync of what it missed; a new disk (run `repd create-md` on it first) gets a full resync from the peer. The node stays online while it resyncs, and a failed disk is not used again until this command.
            Example: repd create-md r0 && repd attach r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.attach), common: common, resource: resource) }
    }
}

struct ResumeIO: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume-io",
        abstract: "Let suspended application I/O go on: it proceeds where data is accessible, and fails where none is.",
        discussion: """
            Requests are suspended with `on-no-data-accessible suspend-io` while no disk can serve them.
            Example: repd resume-io r0
            """
    )
    @OptionGroup var common: CommonOptions
    @Argument(help: "The resource name.") var resource: String

    func run() async throws {
        try await Repd.guarded { try simpleControl(ControlRequest(.resumeIO), common: common, resource: resource) }
    }
}
