import Foundation
import Histogram
#if canImport(Glibc)
import Glibc
#endif

/// The disk's own commit latency. SQLite in WAL mode with `synchronous=FULL` commits by writing
/// the transaction's pages to the WAL and syncing it (`fdatasync` on Linux); here one 4 KiB page
/// is written over a 1 MiB file, as a WAL is rewritten after a checkpoint, and synced.
enum FsyncProbe {
    struct Result {
        var count: Int
        var fdatasync: Histogram<UInt64>
        var fsync: Histogram<UInt64>

        func text() -> String {
            func line(_ name: String, _ h: Histogram<UInt64>) -> String {
                "\(name) (µs): p50 \(h.valueAtPercentile(50)), p90 \(h.valueAtPercentile(90)), p99 \(h.valueAtPercentile(99)), max \(h.max)"
            }
            return [line("write + fdatasync", fdatasync), line("write + fsync", fsync)].joined(separator: "\n")
        }

        func jsonLine() -> String {
            "{\"count\":\(count),\"fdatasyncP50Micros\":\(fdatasync.valueAtPercentile(50)),\"fdatasyncP99Micros\":\(fdatasync.valueAtPercentile(99)),\"fsyncP50Micros\":\(fsync.valueAtPercentile(50)),\"fsyncP99Micros\":\(fsync.valueAtPercentile(99))}"
        }
    }

    static func measure(directory: String, count: Int) throws -> Result {
        let path = (directory as NSString).appendingPathComponent("participant-load-fsync-\(getpid())")
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw LoadError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer {
            close(fd)
            unlink(path)
        }
        let fileSize = 1 << 20
        let page = [UInt8](repeating: 0xA5, count: 4_096)
        // Lay the file out first, so the measured writes overwrite allocated blocks.
        for offset in stride(from: 0, to: fileSize, by: page.count) {
            _ = page.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        }
        fsync(fd)
        func run(_ sync: (Int32) -> Int32) throws -> Histogram<UInt64> {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            for i in 0..<count {
                let offset = off_t((i * page.count) % fileSize)
                let start = DispatchTime.now().uptimeNanoseconds
                let written = page.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset) }
                guard written == page.count, sync(fd) == 0 else {
                    throw LoadError("write or sync failed in \(directory): \(String(cString: strerror(errno)))")
                }
                _ = histogram.record(max(1, (DispatchTime.now().uptimeNanoseconds - start) / 1_000))
            }
            return histogram
        }
        return Result(count: count, fdatasync: try run(fdatasync), fsync: try run(fsync))
    }
}
