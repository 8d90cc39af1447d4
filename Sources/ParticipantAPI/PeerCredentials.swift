import Foundation
import Hummingbird
import Logging
import NIOCore
import ParticipantOutbox
import ParticipantWire
import Synchronization

/// Who is at the other end of a connection: on the Unix socket `SO_PEERCRED` (process, user,
/// group), read once when the connection opens; on loopback TCP the user that owns the client's
/// socket (``SocketDiagnostics``), with no process and the user's primary group.
public struct PeerCredentials: Sendable, Equatable {
    /// 0 when unknown (TCP).
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    /// Reads the credentials of `channel`'s peer (a Unix socket).
    static func read(_ channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(SocketDiagnostics.Failure(description: "the connection has no socket options"))
        }
        // struct ucred (pid, uid, gid): Swift's Glibc does not import it (it needs _GNU_SOURCE);
        // this struct has its layout.
        return provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: SO_PEERCRED))
    }

    /// For log lines of changes: who made them.
    static func metadata(_ context: DaemonRequestContext) -> Logger.Metadata {
        guard let peer = context.peer else { return [:] }
        return ["peer.uid": "\(peer.uid)", "peer.pid": "\(peer.pid)"]
    }
}

/// The supplementary groups of a Unix socket's peer process as the kernel holds them
/// (`SO_PEERGROUPS`, captured when it connected): a group added to or removed from the user since
/// the process started is judged as the process really has it, not as `/etc/group` says now.
enum PeerGroups {
    /// Room for this many groups in one read; a peer with more is looked up in `/etc/group`.
    static let capacity = 1_024

    struct Buffer: Sendable {
        var groups: InlineArray<1_024, UInt32> = .init(repeating: 0)
    }

    /// A zero-length read: succeeds when the peer has no supplementary groups, fails (ERANGE) when
    /// it has any.
    struct Empty: Sendable {}

    /// The groups in a zero-filled buffer the kernel wrote a sorted list to (`set_groups` sorts
    /// them ascending), so 0 (root) can only come first: trailing zeros are the buffer's own.
    /// A buffer of zeros alone is no groups or just group 0: `hasAny` (the zero-length read) decides.
    static func decode(_ words: [UInt32], hasAny: Bool) -> Set<UInt32> {
        guard let last = words.lastIndex(where: { $0 != 0 }) else { return hasAny ? [0] : [] }
        return Set(words[...last])
    }

    /// The peer's supplementary groups; `nil` when they cannot be read this way.
    static func read(_ channel: any Channel) -> EventLoopFuture<Set<UInt32>?> {
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        let name = NIOBSDSocket.Option(rawValue: SO_PEERGROUPS)
        let full: EventLoopFuture<Buffer> = provider.unsafeGetSocketOption(level: .socket, name: name)
        return full.flatMap { buffer in
            // One copy of the buffer's words: `indices.map { buffer.groups[$0] }` copied the whole
            // 4 KiB buffer for each of its 1,024 words (about 480,000 instructions a connection).
            let words = buffer.groups.span.withUnsafeBufferPointer { Array($0) }
            guard words.allSatisfy({ $0 == 0 }) else { return channel.eventLoop.makeSucceededFuture(decode(words, hasAny: true)) }
            let probe: EventLoopFuture<Empty> = provider.unsafeGetSocketOption(level: .socket, name: name)
            return probe.map { _ in Optional(decode([], hasAny: false)) }.recover { error in
                // Only "too small" says there is a group; any other failure says nothing.
                (error as? IOError)?.errnoCode == ERANGE ? decode([], hasAny: true) : nil
            }
        }.recover { _ in nil }
    }
}
