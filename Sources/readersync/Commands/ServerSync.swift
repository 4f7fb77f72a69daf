import Foundation
import ReaderSync

/// Syncs `replica` with a sync server over HTTP.
func syncWithServer(replica: Replica, url: String, token: String?, quiet: Bool) async throws {
    throw ReaderSyncError.transport("server sync is not built yet")
}
