import Crypto
import Foundation

/// Bearer tokens: made from 32 random bytes, stored only as their SHA-256.
enum AccountTokens {
    /// Every token starts with this, so a leaked one is easy to recognize.
    static let prefix = "rst_"

    /// A new random token: the prefix and 43 characters of base64url.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + base64
    }

    /// The hex SHA-256 of a token, as the store keeps it.
    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
