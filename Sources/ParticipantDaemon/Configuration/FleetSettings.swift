import Foundation
import ParticipantFleet
import ParticipantWire

/// `fleet.*`: where the fleet's shared quota lives, if anywhere.
public struct FleetSettings: Sendable, Equatable {
    /// `nil`: no fleet; each daemon paces on its own.
    public var postgresURL: String?
    public var passwordFile: String?
    /// A PEM bundle trusted besides the system's roots for `sslmode=verify-ca`/`verify-full`.
    public var caFile: String?
    /// `nil`: the host name.
    public var hostName: String?
    /// 0: the rate divided by the hosts seen in the last minute.
    public var fallbackShare: Double = 0

    public init() {}

    public var isEnabled: Bool { postgresURL != nil }

    /// The URL parsed (a password in it is refused: it would show in `ps` and the configuration).
    func check() throws(ConfigurationError) {
        guard let postgresURL else {
            if passwordFile != nil {
                throw ConfigurationError(key: "fleet.postgresPasswordFile", rule: "needs fleet.postgresURL")
            }
            return
        }
        let address: FleetDatabase.Address
        do {
            address = try FleetDatabase.Address(url: postgresURL)
        } catch {
            throw ConfigurationError(key: "fleet.postgresURL", rule: error.rule)
        }
        if let caFile {
            guard address.sslMode == "verify-ca" || address.sslMode == "verify-full" else {
                throw ConfigurationError(key: "fleet.postgresCAFile", rule: "is used only with sslmode=verify-ca or verify-full in fleet.postgresURL (sslmode=\(address.sslMode) does not check the certificate)")
            }
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw ConfigurationError(key: "fleet.postgresCAFile", rule: "cannot read \(caFile)")
            }
        }
        guard address.password == nil else {
            throw ConfigurationError(
                key: "fleet.postgresURL",
                rule: "must not hold a password (it would show in ps, in the environment and in the configuration): put it in fleet.postgresPasswordFile, a systemd credential (LoadCredential=)"
            )
        }
        if let hostName, let problem = InstanceName.problem(hostName.replacingOccurrences(of: ".", with: "-")) {
            throw ConfigurationError(key: "fleet.hostName", rule: problem)
        }
    }

    /// The database's address, with the password read from `passwordFile`.
    func address() throws(ConfigurationError) -> FleetDatabase.Address? {
        guard let postgresURL else { return nil }
        var address: FleetDatabase.Address
        do {
            address = try FleetDatabase.Address(url: postgresURL)
        } catch {
            throw ConfigurationError(key: "fleet.postgresURL", rule: error.rule)
        }
        address.caFile = caFile
        if let passwordFile {
            if let mode = SecretFile.modeIfReadableByOthers(passwordFile) {
                throw ConfigurationError(
                    key: "fleet.postgresPasswordFile",
                    rule: "\(passwordFile) is readable by every user (mode \(String(mode, radix: 8))): chmod 0600 or 0640, or pass it as a systemd credential (LoadCredential=)"
                )
            }
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw ConfigurationError(key: "fleet.postgresPasswordFile", rule: "cannot read \(passwordFile)")
            }
            address.password = text.trimmingCharacters(in: .newlines)
        }
        return address
    }

    /// This host's name in the fleet.
    var resolvedHostName: String {
        hostName ?? ProcessInfo.processInfo.hostName
    }
}
