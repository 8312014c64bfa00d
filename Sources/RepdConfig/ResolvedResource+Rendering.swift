extension ResolvedResource {
    /// `repd dump-config`: the resource in DRBD syntax as this node uses it, with `common` merged
    /// in and inherited values written into each `on` section. Reading the output back gives an
    /// equal ``ResolvedResource``.
    public func rendered() -> String {
        var lines: [String] = []
        lines.append("# resource \(name) as seen from \(local.names.joined(separator: " ")), defined at \(location)")
        lines.append("resource \(Word.render(name)) {")
        for section in Self.sectionNames {
            guard let options = sections[section], !options.isEmpty else { continue }
            lines.append("    \(section) {")
            for option in options {
                lines.append("        " + ([option.name] + option.values.map(Word.render)).joined(separator: " ") + ";")
            }
            lines.append("    }")
        }
        lines += Self.render(local)
        if let peer { lines += Self.render(peer) }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func render(_ host: HostConfig) -> [String] {
        var lines = ["    on \(host.names.map(Word.render).joined(separator: " ")) {"]
        let device = Word.render(host.device) + (host.minor.map { " minor \($0)" } ?? "")
        lines.append("        device \(device);")
        lines.append("        disk \(Word.render(host.disk));")
        lines.append("        address \(host.address.drbdSyntax);")
        lines.append("        meta-disk \(Word.render(host.metaDisk.description));")
        if let nodeId = host.nodeId { lines.append("        node-id \(nodeId);") }
        if let nbdAddress = host.nbdAddress { lines.append("        nbd-address \(nbdAddress.drbdSyntax);") }
        if let fenceAddress = host.fenceAddress { lines.append("        fence-address \(fenceAddress.drbdSyntax);") }
        lines.append("    }")
        return lines
    }
}
