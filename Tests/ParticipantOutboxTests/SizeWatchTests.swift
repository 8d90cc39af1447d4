@testable import ParticipantOutbox
import Testing

/// When a submission looks the database's size up: far from the limit, after as many items as
/// could fill half the room left, counting each as large as an item can be; near it, every time.
@Suite struct SizeWatchTests {
    @Test("A fresh watch looks at once; then not until the items stored could have used half the room")
    func allowance() {
        let watch = SizeWatch()
        #expect(watch.mustCheck, "nothing known yet")
        // 64 MiB of room: half of it is 1,024 items of 32 KiB.
        watch.checked(roomBytes: 64 << 20)
        for _ in 0..<1_023 { watch.stored() }
        #expect(!watch.mustCheck)
        watch.stored()
        #expect(watch.mustCheck)
    }

    @Test("At or past 90% of the limit, and just below it, every transaction looks")
    func nearTheLimit() {
        let watch = SizeWatch()
        watch.checked(roomBytes: 0)
        #expect(watch.mustCheck)
        watch.checked(roomBytes: -4_096)
        #expect(watch.mustCheck)
        watch.checked(roomBytes: 40 * 1024)
        #expect(watch.mustCheck, "half the room is less than one item")
    }

    @Test("Between two looks, the items allowed cannot cross the 90% line, even each at the bound")
    func neverCrosses() {
        for room in [Int64(0), 100_000, 1 << 20, 123_456_789, 1 << 30] {
            let watch = SizeWatch()
            watch.checked(roomBytes: room)
            var added: Int64 = 0
            while !watch.mustCheck {
                watch.stored()
                added += SizeWatch.itemBytesBound
            }
            #expect(added <= max(0, room / 2), "room \(room): \(added) bytes added unchecked")
        }
    }
}
