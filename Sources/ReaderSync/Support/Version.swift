/// The version of this build of ReaderSync: the library, `readersync --version` and `readersync-server --version`.
public enum ReaderSyncVersion {
    /// The release, as semantic versioning (`MAJOR.MINOR.PATCH`).
    public static let current = "0.2.0"
}
