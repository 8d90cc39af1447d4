import Foundation
@testable import ParticipantAPI
import Testing

/// The hot routes' `Date` header, as RFC 9110 writes it (IMF-fixdate).
@Suite struct HTTPDateTests {
    @Test("IMF-fixdate for RFC 9110's example, leap days, the turn of a century, and Foundation's own formatting of a spread of instants")
    func format() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.format(4_133_980_799) == "Fri, 31 Dec 2100 23:59:59 GMT")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var second = 0
        while second < 4_200_000_000 {
            #expect(HTTPDate.format(second) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(second))), "\(second)")
            second += 7_777_777
        }
    }

    @Test("now() is the current second's")
    func now() {
        let before = Int(Date().timeIntervalSince1970)
        let text = HTTPDate.now()
        let after = Int(Date().timeIntervalSince1970)
        #expect(text == HTTPDate.format(before) || text == HTTPDate.format(after))
    }
}
