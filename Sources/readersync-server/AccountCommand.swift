import ArgumentParser
import Foundation
import ReaderSync
import ReaderSyncServer

struct AccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account", abstract: "Add, list, revoke and rotate the tokens of the accounts that may sync.",
        subcommands: [Add.self, List.self, Revoke.self, Rotate.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an account and print its bearer token (the last word of the output; shown only once).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The account name: the same name its device replicas are created with.") var name: String
        @Option(help: "reader (default) or editor (may also publish articles).") var role = "reader"

        func validate() throws {
            guard AccountRole(rawValue: role) != nil else { throw ValidationError("--role must be reader or editor") }
        }

        func run() async throws {
            try await reporting {
                let added = try await store.open(createIfMissing: true).addAccount(name: name, role: AccountRole(rawValue: role) ?? .reader)
                say("added account \(added.account.name) (\(added.account.role)); its token is shown only once:")
                say(added.token)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await reporting {
                let accounts = try await store.open(createIfMissing: false).accounts()
                if accounts.isEmpty { say("(no accounts)"); return }
                let width = accounts.map(\.name.count).max() ?? 0
                for account in accounts {
                    let name = account.name.padding(toLength: width, withPad: " ", startingAt: 0)
                    let state = account.revokedAt.map { "revoked \(ISO8601DateFormatter().string(from: $0))" } ?? "active"
                    say("\(name)  \(account.role.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0))  \(state)")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an account's token: its devices can no longer sync (takes effect at once, even in a running server).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The account name.") var name: String

        func run() async throws {
            try await reporting {
                let account = try await store.open(createIfMissing: false).revokeAccount(name: name)
                say("revoked account \(account.name)")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give an account a new token (the last word of the output; shown only once). The old token stops working at once, even in a running server; a revoked account is active again.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The account name.") var name: String

        func run() async throws {
            try await reporting {
                let rotated = try await store.open(createIfMissing: false).rotateToken(name: name)
                say("new token for account \(rotated.account.name) (\(rotated.account.role)); the old one no longer works; shown only once:")
                say(rotated.token)
            }
        }
    }
}
