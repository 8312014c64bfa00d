import RepdCore

/// A value that does not fit its option, with the word to blame.
struct ValueError: Error, Sendable {
    var location: SourceLocation
    var message: String
}

/// Parses option values. The validator reports the errors; the resolver, which only sees
/// validated input, takes the values.
enum ValueParser {
    // MARK: Whole options

    /// Checks every value of `option` against `spec`; `nil` when it is valid.
    static func check(_ option: RawOption, _ spec: OptionSpec) -> ValueError? {
        let name = option.name
        switch spec.kind {
        case .device:
            return device(option).failure
        case .backingDisk:
            return backingDisk(option).failure
        case .address:
            return address(option).failure
        case .metaDisk(let flexible):
            return metaDisk(option, flexible: flexible).failure
        default:
            break
        }
        if let error = checkArity(option, spec) { return error }
        switch spec.kind {
        case .flag:
            return flag(option).failure
        case .negatedFlag, .device, .backingDisk, .address, .metaDisk:
            return nil
        case .number(let numberSpec):
            return number(option.values[0], option: name, spec: numberSpec).failure
        case .choice(let choices, let caseInsensitive):
            return choice(option.values[0], option: name, choices: choices, caseInsensitive: caseInsensitive).failure
        case .afterSB0Pri:
            return afterSB0Pri(option.values[0]).failure
        case .algorithm(let supported):
            let value = option.values[0]
            guard supported.contains(value.text) else {
                return ValueError(
                    location: value.location,
                    message: "unsupported \(name) '\(value.text)'; repd supports \(list(supported, conjunction: "and"))")
            }
            return nil
        case .text(let maxLength):
            let value = option.values[0]
            if value.text.isEmpty {
                return ValueError(location: value.location, message: "'\(name)' must not be empty")
            }
            if let maxLength, value.text.count > maxLength {
                return ValueError(
                    location: value.location,
                    message: "\(name) is \(value.text.count) characters long; at most \(maxLength) are allowed")
            }
            return nil
        case .command:
            let value = option.values[0]
            return value.text.allSatisfy(\.isWhitespace)
                ? ValueError(location: value.location, message: "handler '\(name)' has an empty command") : nil
        case .hostList:
            return nil  // the host names are checked against the resource's `on` sections
        case .cpuMask:
            let value = option.values[0]
            let valid = value.text.contains(where: \.isHexDigit) && value.text.allSatisfy { $0.isHexDigit || $0 == "," }
            return valid
                ? nil
                : ValueError(
                    location: value.location,
                    message: "invalid cpu-mask '\(value.text)'; expected a hexadecimal CPU mask such as 3 or ff,ffffffff")
        }
    }

    private static func checkArity(_ option: RawOption, _ spec: OptionSpec) -> ValueError? {
        let arity = spec.arity
        if option.values.count < arity.lowerBound {
            return ValueError(location: option.location, message: "missing value for '\(option.name)'")
        }
        guard option.values.count > arity.upperBound else { return nil }
        let takes: String
        switch spec.kind {
        case .flag: takes = "no value, yes or no"
        case .negatedFlag: takes = "no value"
        case .hostList: takes = "one or two host names, or 'both'"
        case .command: takes = "one command (quote it if it contains spaces)"
        default: takes = "one value"
        }
        return ValueError(
            location: option.values[arity.upperBound].location,
            message: "too many values for '\(option.name)'; it takes \(takes)")
    }

    /// `a, b and c`.
    static func list(_ items: [String], conjunction: String = "or") -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " \(conjunction) " + items[items.count - 1]
    }

    // MARK: Flags and choices

    /// `name;` and `name yes;` are true, `name no;` false. A negated flag (`no-disk-flushes`) is
    /// false.
    static func flag(_ option: RawOption) -> Result<Bool, ValueError> {
        guard let value = option.values.first else { return .success(true) }
        switch value.text {
        case "yes": return .success(true)
        case "no": return .success(false)
        default:
            return .failure(ValueError(
                location: value.location,
                message: "invalid value '\(value.text)' for '\(option.name)'; expected yes or no (or no value)"))
        }
    }

    static func choice(_ value: Word, option name: String, choices: [String], caseInsensitive: Bool) -> Result<String, ValueError> {
        let match = choices.first { caseInsensitive ? $0.lowercased() == value.text.lowercased() : $0 == value.text }
        if let match { return .success(match) }
        return .failure(ValueError(location: value.location, message: invalidChoiceMessage(value.text, option: name, choices: choices)))
    }

    /// The after-sb options and the values each accepts, to tell which one a value belongs to.
    private static let splitBrainChoices: [(option: String, values: [String])] = [
        ("after-sb-0pri", AfterSB0Pri.fixedCases.map(\.description) + [AfterSB0Pri.discardNodePrefix + "NODENAME"]),
        ("after-sb-1pri", AfterSB1Pri.allCases.map(\.rawValue)),
        ("after-sb-2pri", AfterSB2Pri.allCases.map(\.rawValue)),
        ("rr-conflict", RRConflict.allCases.map(\.rawValue)),
    ]

    private static func invalidChoiceMessage(_ value: String, option name: String, choices: [String]) -> String {
        let expected = "expected one of: " + choices.joined(separator: ", ")
        let elsewhere = splitBrainChoices.filter { choice in
            choice.option != name
                && (choice.values.contains(value) || (choice.option == "after-sb-0pri" && AfterSB0Pri(drbdName: value) != nil))
        }.map(\.option)
        if splitBrainChoices.contains(where: { $0.option == name }), !elsewhere.isEmpty {
            return "'\(value)' is not a valid \(name) policy (it is valid for \(list(elsewhere))); \(expected)"
        }
        return "invalid value '\(value)' for '\(name)'; \(expected)" + Suggestion.hint(for: value, among: choices)
    }

    static func afterSB0Pri(_ value: Word) -> Result<AfterSB0Pri, ValueError> {
        if let policy = AfterSB0Pri(drbdName: value.text) { return .success(policy) }
        let choices = splitBrainChoices[0].values
        return .failure(ValueError(location: value.location, message: invalidChoiceMessage(value.text, option: "after-sb-0pri", choices: choices)))
    }

    // MARK: Numbers

    /// A number in the option's default unit: `10M` for `resync-rate` is 10240 (KiB/s).
    static func number(_ value: Word, option name: String, spec: NumberSpec) -> Result<Int64, ValueError> {
        let text = value.text
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        let suffix = text.dropFirst(digits.count)
        let multiplier: Int64?  // bytes per suffix unit, or the count multiplier
        switch suffix {
        case "": multiplier = 1
        case "k", "K": multiplier = 1 << 10
        case "m", "M": multiplier = 1 << 20
        case "g", "G": multiplier = 1 << 30
        case "s": multiplier = spec.unit.bytesPerUnit == nil ? nil : 512
        default: multiplier = nil
        }
        let acceptsSuffix = spec.unit != .seconds && spec.unit != .deciseconds
        guard !digits.isEmpty, let multiplier, suffix.isEmpty || acceptsSuffix else {
            return .failure(ValueError(location: value.location, message: "invalid value '\(text)' for '\(name)'; expected \(expectation(spec))"))
        }
        let outOfRange = ValueError(
            location: value.location,
            message: "value \(text) for '\(name)' is out of range (\(spec.range.lowerBound) to \(spec.range.upperBound)"
                + (spec.label.isEmpty ? "" : " \(spec.label)") + ")")
        guard let count = Int64(digits) else { return .failure(outOfRange) }
        var result: Int64
        if let bytesPerUnit = spec.unit.bytesPerUnit {
            let bytes = count.multipliedReportingOverflow(by: suffix.isEmpty ? bytesPerUnit : multiplier)
            guard !bytes.overflow else { return .failure(outOfRange) }
            guard bytes.partialValue % bytesPerUnit == 0 else {
                return .failure(ValueError(
                    location: value.location,
                    message: "value \(text) for '\(name)' is not a whole number of \(spec.label)"))
            }
            result = bytes.partialValue / bytesPerUnit
        } else {
            let scaled = count.multipliedReportingOverflow(by: multiplier)
            guard !scaled.overflow else { return .failure(outOfRange) }
            result = scaled.partialValue
        }
        guard spec.range.contains(result) else { return .failure(outOfRange) }
        return .success(result)
    }

    private static func expectation(_ spec: NumberSpec) -> String {
        switch spec.unit {
        case .count: "a number (optionally with K, M or G)"
        case .seconds, .deciseconds: "a whole number of \(spec.label)"
        case .bytes, .kibibytes, .sectors: "a number in \(spec.label) or with a unit (K, M, G or s)"
        }
    }

    // MARK: Addresses

    /// `[ipv4|ipv6] ADDRESS:PORT`, IPv6 in brackets.
    static func address(_ option: RawOption) -> Result<NetworkAddress, ValueError> {
        let name = option.name
        let values = option.values
        guard let last = values.last else {
            return .failure(ValueError(location: option.location, message: "missing value for '\(name)'"))
        }
        if values.count > 2 {
            return .failure(ValueError(
                location: values[2].location,
                message: "too many values for '\(name)'; expected [ipv4|ipv6] ADDRESS:PORT"))
        }
        var family: AddressFamily?
        if values.count == 2 {
            let af = values[0]
            if let known = AddressFamily(rawValue: af.text) {
                family = known
            } else if ["sdp", "ssocks", "sci"].contains(af.text) {
                return .failure(ValueError(location: af.location, message: "address family '\(af.text)' is not supported by repd; use ipv4 or ipv6"))
            } else {
                return .failure(ValueError(location: af.location, message: "unknown address family '\(af.text)'; expected ipv4 or ipv6"))
            }
        }
        let text = last.text
        func failure(_ reason: String) -> Result<NetworkAddress, ValueError> {
            .failure(ValueError(location: last.location, message: "invalid \(name) '\(text)': \(reason)"))
        }
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return failure("expected [IPV6-ADDRESS]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            if family == .ipv4 { return failure("an IPv6 address cannot have address family ipv4") }
            family = .ipv6
        } else {
            guard let colon = text.lastIndex(of: ":") else { return failure("expected ADDRESS:PORT") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") || family == .ipv6 {
                return failure("IPv6 addresses must be in brackets, e.g. ipv6 [fd00::1]:7789")
            }
            family = .ipv4
        }
        let resolvedFamily = family ?? .ipv4
        switch resolvedFamily {
        case .ipv4 where !isIPv4(host):
            return failure("'\(host)' is not a valid IPv4 address")
        case .ipv6 where !isIPv6(host):
            return failure("'\(host)' is not a valid IPv6 address")
        default:
            break
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText),
            (1...65535).contains(port)
        else {
            return failure("port must be a number from 1 to 65535")
        }
        return .success(NetworkAddress(family: resolvedFamily, host: resolvedFamily == .ipv6 ? host.lowercased() : String(host), port: port))
    }

    /// Four decimal octets, 0 to 255.
    static func isIPv4(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
        }
    }

    /// Eight groups of up to four hex digits, `::` at most once, an optional trailing IPv4 part
    /// and an optional `%zone`.
    static func isIPv6(_ text: Substring) -> Bool {
        var address = text
        if let percent = address.firstIndex(of: "%") {
            guard address.index(after: percent) < address.endIndex else { return false }
            address = address[..<percent]
        }
        let halves = splitOnDoubleColon(address)
        guard halves.count <= 2 else { return false }
        var groups = 0
        for (halfIndex, half) in halves.enumerated() where !half.isEmpty {
            let parts = half.split(separator: ":", omittingEmptySubsequences: false)
            for (index, part) in parts.enumerated() {
                let isLastOfAddress = halfIndex == halves.count - 1 && index == parts.count - 1
                if isLastOfAddress && part.contains(".") {
                    guard isIPv4(part) else { return false }
                    groups += 2
                } else {
                    guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit) else { return false }
                    groups += 1
                }
            }
        }
        return halves.count == 2 ? groups <= 7 : groups == 8
    }

    private static func splitOnDoubleColon(_ text: Substring) -> [Substring] {
        var parts: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(after: index)
            if text[index] == ":", next < text.endIndex, text[next] == ":" {
                parts.append(text[start..<index])
                index = text.index(after: next)
                start = index
            } else {
                index = next
            }
        }
        parts.append(text[start...])
        return parts
    }

    // MARK: Devices and disks

    /// `PATH`, `PATH minor N` or `minor N` (which means `/dev/drbdN`). The minor of a
    /// `/dev/drbdN` path without `minor` is N, as in DRBD. repd extension: `none`, no block
    /// device at all (`repd up` only exports the resource over NBD).
    static func device(_ option: RawOption) -> Result<(path: String, minor: Int?), ValueError> {
        let values = option.values
        let usage = "expected PATH, PATH minor N, minor N or none"
        func minor(_ word: Word) -> Result<Int, ValueError> {
            guard !word.isQuoted, word.text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(word.text),
                n <= OptionCatalog.maxMinor
            else {
                return .failure(ValueError(location: word.location, message: "invalid minor number '\(word.text)'; expected 0 to \(OptionCatalog.maxMinor)"))
            }
            return .success(n)
        }
        func path(_ word: Word) -> Result<String, ValueError> {
            guard word.text.hasPrefix("/") else {
                return .failure(ValueError(location: word.location, message: "device '\(word.text)' must be an absolute path such as /dev/drbd1"))
            }
            return .success(word.text)
        }
        switch values.count {
        case 0:
            return .failure(ValueError(location: option.location, message: "missing value for 'device'; \(usage)"))
        case 1 where values[0].keyword == "minor":
            return .failure(ValueError(location: values[0].location, message: "missing minor number after 'minor'"))
        case 1 where values[0].keyword == HostConfig.noDevice:
            return .success((HostConfig.noDevice, nil))
        case 1:
            return path(values[0]).map { ($0, inferredMinor($0)) }
        case 2 where values[0].keyword == "minor":
            return minor(values[1]).map { ("/dev/drbd\($0)", $0) }
        case 3 where values[1].keyword == "minor":
            return path(values[0]).flatMap { p in minor(values[2]).map { (p, $0) } }
        default:
            return .failure(ValueError(location: values[0].location, message: "invalid device '\(Statement.spell(values))'; \(usage)"))
        }
    }

    private static func inferredMinor(_ path: String) -> Int? {
        let prefix = "/dev/drbd"
        guard path.hasPrefix(prefix) else { return nil }
        let digits = path.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.count <= 7, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits).flatMap { $0 <= OptionCatalog.maxMinor ? $0 : nil }
    }

    /// An absolute path, or `none` for a diskless node.
    static func backingDisk(_ option: RawOption) -> Result<String, ValueError> {
        guard option.values.count == 1 else {
            let location = option.values.count > 1 ? option.values[1].location : option.location
            return .failure(ValueError(
                location: location,
                message: option.values.isEmpty ? "missing value for 'disk'" : "too many values for 'disk'; it takes one path"))
        }
        let value = option.values[0]
        guard value.text.hasPrefix("/") || (value.text == "none" && !value.isQuoted) else {
            return .failure(ValueError(location: value.location, message: "disk '\(value.text)' must be an absolute path or 'none'"))
        }
        return .success(value.text)
    }

    /// `internal`, `PATH` or `PATH[INDEX]` (the index may be written apart: `PATH [INDEX]`).
    /// `flexible-meta-disk` takes no index.
    static func metaDisk(_ option: RawOption, flexible: Bool) -> Result<MetaDisk, ValueError> {
        guard let first = option.values.first else {
            return .failure(ValueError(location: option.location, message: "missing value for '\(option.name)'"))
        }
        let text = option.values.map(\.text).joined()
        let usage = flexible ? "expected internal or PATH" : "expected internal, PATH or PATH[INDEX]"
        let invalid = ValueError(location: first.location, message: "invalid \(option.name) '\(text)'; \(usage)")
        if text == "internal" && !first.isQuoted { return .success(.internal) }
        guard text.hasPrefix("/") else {
            return .failure(option.values.count == 1 && !text.contains("[") ? ValueError(
                location: first.location, message: "\(option.name) '\(text)' must be 'internal' or an absolute path") : invalid)
        }
        guard let open = text.firstIndex(of: "[") else { return .success(.external(path: text, index: nil)) }
        let path = String(text[..<open])
        let rest = text[text.index(after: open)...]
        guard !flexible, rest.hasSuffix("]") else { return .failure(invalid) }
        let digits = rest.dropLast()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let index = Int(digits),
            index <= Int(Int32.max)
        else {
            return .failure(ValueError(location: first.location, message: "invalid meta-disk index in '\(text)'; expected a number such as \(path)[0]"))
        }
        return .success(.external(path: path, index: index))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    var value: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}
