#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// TLS for the replication link and for NBD: contexts built from PEM files, with errors that name
/// the file and the option, and handshake failures said in an administrator's words.
public enum TLSSetup {
    /// A TLS setting that cannot be used (`up` and `adjust` report it and change nothing).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The two contexts of the replication link: the listener's and the dialler's. Both are TLS
    /// 1.3 only, show `certificate`, and require the peer's certificate to chain to `ca` (the
    /// peer's node name is checked by the link after the handshake: see `certificateNames`).
    public struct PeerContexts: Sendable {
        public let server: NIOSSLContext
        public let client: NIOSSLContext
        /// For log lines: which files these came from.
        public let summary: String
    }

    public static func peerContexts(certificate: String, privateKey: String, ca: String) throws -> PeerContexts {
        let chain = try certificates(certificate, option: "tls-certificate")
        let key = try self.privateKey(privateKey, option: "tls-privkey")
        let roots = try certificates(ca, option: "tls-ca")
        func configure(_ base: TLSConfiguration) -> TLSConfiguration {
            var c = base
            c.minimumTLSVersion = .tlsv13
            c.certificateVerification = .noHostnameVerification
            c.trustRoots = .certificates(roots)
            c.certificateChain = chain.map { .certificate($0) }
            c.privateKey = .privateKey(key)
            return c
        }
        let server = try context(configure(.makeServerConfiguration(certificateChain: [], privateKey: .privateKey(key))),
                                 certificate: certificate, privateKey: privateKey)
        let client = try context(configure(.makeClientConfiguration()), certificate: certificate, privateKey: privateKey)
        return PeerContexts(server: server, client: client, summary: "TLS 1.3, certificate \(certificate), CA \(ca)")
    }

    /// The NBD server's context for NBD_OPT_STARTTLS: TLS 1.2 or newer (what nbd-client, qemu and
    /// libnbd speak); with `clientCA`, a client must show a certificate that CA signed.
    public static func nbdServerContext(certificate: String, privateKey: String, clientCA: String?) throws -> NIOSSLContext {
        let chain = try certificates(certificate, option: "nbd-tls-certificate")
        let key = try self.privateKey(privateKey, option: "nbd-tls-privkey")
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        c.minimumTLSVersion = .tlsv12
        if let clientCA {
            c.trustRoots = .certificates(try certificates(clientCA, option: "nbd-tls-ca"))
            c.certificateVerification = .noHostnameVerification
        }
        return try context(c, certificate: certificate, privateKey: privateKey)
    }

    private static func context(_ configuration: TLSConfiguration, certificate: String, privateKey: String) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure("cannot set up TLS with certificate \(certificate) and private key \(privateKey): \(error) "
                + "(does the key belong to the certificate?)")
        }
    }

    static func readFile(_ path: String, option: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("\(option) \(path): cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("\(option) \(path): cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= 1 << 20 else { throw Failure("\(option) \(path): larger than 1 MiB, not a PEM file") }
        }
        return bytes
    }

    static func certificates(_ path: String, option: String) throws -> [NIOSSLCertificate] {
        let bytes = try readFile(path, option: option)
        let certificates = try? NIOSSLCertificate.fromPEMBytes(bytes)
        guard let certificates, !certificates.isEmpty else {
            throw Failure("\(option) \(path): no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
        }
        return certificates
    }

    static func privateKey(_ path: String, option: String) throws -> NIOSSLPrivateKey {
        let bytes = try readFile(path, option: option)
        guard let key = try? NIOSSLPrivateKey(bytes: bytes, format: .pem) else {
            throw Failure("\(option) \(path): no unencrypted PEM private key in it (expected -----BEGIN PRIVATE KEY-----)")
        }
        return key
    }

    /// The names a certificate is issued to: its subjectAltName DNS entries, or its common name
    /// when it has none (as hostname checks do).
    public static func certificateNames(_ certificate: NIOSSLCertificate) -> [String] {
        let dns = certificate._subjectAlternativeNames().compactMap { name -> String? in
            name.nameType == .dnsName ? String(decoding: name.contents, as: UTF8.self) : nil
        }
        if !dns.isEmpty { return dns }
        // NIOSSL keeps the common name internal; its description carries it.
        for field in certificate.description.split(separator: ";") where field.hasPrefix("common_name=") {
            return [String(field.dropFirst("common_name=".count).prefix { $0 != ">" })]
        }
        return []
    }

    /// Why this node refused the certificate a peer showed, as BoringSSL reported it certificate
    /// by certificate: kept per connection, read when the handshake fails.
    public final class Diagnosis: Sendable {
        private let box = NIOLockedValueBox<String?>(nil)
        public init() {}
        public var reason: String? { box.withLockedValue { $0 } }

        /// The verification callback of NIOSSL's handlers: passes BoringSSL's verdict through and
        /// notes why a certificate failed.
        public func callback(trust: String) -> NIOSSLVerificationCallback {
            { [box] result, certificate in
                if case .failed = result {
                    let now = time(nil)
                    let names = TLSSetup.certificateNames(certificate).joined(separator: ", ")
                    let what = "the certificate of \(names.isEmpty ? "the peer" : "'\(names)'")"
                    let why: String
                    if certificate.notValidAfter < now {
                        why = "\(what) expired on \(TLSSetup.date(certificate.notValidAfter))"
                    } else if certificate.notValidBefore > now {
                        why = "\(what) is not valid before \(TLSSetup.date(certificate.notValidBefore))"
                    } else {
                        why = "\(what) is not signed by \(trust)"
                    }
                    box.withLockedValue { if $0 == nil { $0 = why } }
                }
                return result
            }
        }
    }

    static func date(_ t: time_t) -> String {
        var time = t
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A failed TLS handshake in words: this node's own verdict if it refused the peer's
    /// certificate, else what the peer's alert says.
    public static func explain(_ error: any Error, diagnosis: Diagnosis?, peer: String = "the peer") -> String {
        if let reason = diagnosis?.reason { return "TLS: refused \(peer): \(reason)" }
        let text = "\(error)"
        let known: [(String, String)] = [
            ("UNKNOWN_CA", "\(peer) does not trust this node's certificate (not signed by its CA)"),
            ("CERTIFICATE_EXPIRED", "\(peer) refused this node's certificate as expired"),
            ("BAD_CERTIFICATE", "\(peer) refused this node's certificate"),
            ("CERTIFICATE_REQUIRED", "\(peer) requires a certificate this node did not show"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "\(peer) showed no certificate"),
            ("WRONG_VERSION_NUMBER", "\(peer) does not speak TLS here (is TLS on at both ends?)"),
            ("UNSUPPORTED_PROTOCOL", "\(peer) offers no TLS version this node accepts"),
            ("PROTOCOL_VERSION", "\(peer) accepts no TLS version this node offers"),
            ("uncleanShutdown", "\(peer) closed the connection during the TLS handshake (it may have refused this node's certificate)"),
        ]
        for (needle, words) in known where text.contains(needle) { return "TLS: \(words) [\(text)]" }
        return "TLS: handshake failed: \(text)"
    }
}
