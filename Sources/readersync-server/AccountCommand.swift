import ArgumentParser
import Foundation
import ReaderSync
import ReaderSyncServer

struct AccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account", abstract: "Add, list and revoke the accounts that may sync.",
        subcommands: [Add.self, List.self, Revoke.self])

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
                let added = try await store.open().addAccount(name: name, role: AccountRole(rawValue: role) ?? .reader)
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
                let accounts = try await store.open().accounts()
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
                let account = try await store.open().revokeAccount(name: name)
                say("revoked account \(account.name)")
            }
        }
    }
}
