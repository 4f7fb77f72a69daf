import Foundation
import GRDB

/// A change on its way into the store: checked, with its origin resolved and its key an index into a key table.
struct IncomingChange {
    var origin: OriginRef
    var seq: UInt64
    var hlc: UInt64
    var entity: EntityKind
    var field: FieldCode
    var keyID: Int32
    var value: ChangeValue
    var parsed: ChangeRules.Parsed

    var stamp: Stamp { Stamp(hlc: hlc, origin: origin, seq: seq) }
}

/// The one merge path of local mutations and received bundles, one batch (a decoded block, or one mutation) at a
/// time: look up the batch's targets, load each one's current winners, merge in memory (``MergeEngine``), then
/// write each touched row once, insert only the surviving changes and delete the superseded ones. Only comments
/// whose id is not bound to an account go through the reference rules with their retained history.
final class Merger {
    let tx: StoreTransaction
    /// Article rows by key index, across the batches of one bundle.
    private var articleRows: [Int32: Int64] = [:]

    init(_ tx: StoreTransaction) { self.tx = tx }

    /// What a batch touched, for observers.
    struct Touched {
        var articles: [Int32] = []
        var comments: [Int32] = []
        var readStates: [Int32] = []
    }

    private struct ReadStateTarget: Hashable {
        var key: Int32
        var account: Int64
    }

    /// Merges `changes` (checked, not yet held) into the store.
    func merge(_ changes: [IncomingChange], keys: BundleKeyTable) throws -> Touched {
        var outcome = MergeOutcome(incoming: changes.count)
        var touched = Touched()
        // Group by target, in order of first appearance.
        var articleGroups: [Int32: [Int]] = [:]
        var commentGroups: [Int32: [Int]] = [:]
        var readStateGroups: [ReadStateTarget: [Int]] = [:]
        var articleOrder: [Int32] = []
        var commentOrder: [Int32] = []
        var readStateOrder: [ReadStateTarget] = []
        for (i, change) in changes.enumerated() {
            switch change.entity {
            case .article:
                if articleGroups[change.keyID] == nil { articleOrder.append(change.keyID) }
                articleGroups[change.keyID, default: []].append(i)
            case .comment:
                if commentGroups[change.keyID] == nil { commentOrder.append(change.keyID) }
                commentGroups[change.keyID, default: []].append(i)
            case .readState:
                let target = ReadStateTarget(key: change.keyID, account: change.origin.accountRow)
                if readStateGroups[target] == nil { readStateOrder.append(target) }
                readStateGroups[target, default: []].append(i)
            }
        }
        var targetRow = [Int64](repeating: 0, count: changes.count)

        // Articles.
        for keyID in articleOrder {
            let key = keys[keyID]
            var record = try tx.loadArticle(key: key)
            for i in articleGroups[keyID] ?? [] {
                guard case .content(let content) = changes[i].parsed else { continue }
                MergeEngine.mergeContent(&record, Held(stamp: changes[i].stamp, incoming: Int32(i)), content, &outcome)
            }
            let row = record.changed ? try tx.saveArticle(key: key, record) : record.row
            if let row {
                articleRows[keyID] = row
                for i in articleGroups[keyID] ?? [] { targetRow[i] = row }
            }
            touched.articles.append(keyID)
        }

        // Read states.
        for target in readStateOrder {
            let indices = readStateGroups[target] ?? []
            let articleRow = try articleRow(keyID: target.key, keys: keys)
            var record = try tx.loadReadState(accountRow: target.account, articleRow: articleRow)
            if indices.contains(where: { changes[$0].field == .progress }) {
                try tx.loadFrontierExtras(&record, accountRow: target.account, articleRow: articleRow)
            }
            for i in indices {
                let change = changes[i]
                let held = Held(stamp: change.stamp, incoming: Int32(i))
                targetRow[i] = articleRow
                switch (change.field, change.value) {
                case (.read, .int(let t)): MergeEngine.mergeRead(&record, held, t, &outcome)
                case (.read, _): MergeEngine.mergeRead(&record, held, nil, &outcome)
                case (.saved, .int(let t)): MergeEngine.mergeSaved(&record, held, t, &outcome)
                case (.saved, _): MergeEngine.mergeSaved(&record, held, nil, &outcome)
                case (.progress, .double(let p)): MergeEngine.mergeProgress(&record, held, p, &outcome)
                case (.progress, _): MergeEngine.mergeReset(&record, held, &outcome)
                default: outcome.displace(held)
                }
            }
            if record.changed { try tx.saveReadState(accountRow: target.account, articleRow: articleRow, record) }
            touched.readStates.append(target.key)
        }

        // Comments.
        for keyID in commentOrder {
            let key = keys[keyID]
            let indices = commentGroups[keyID] ?? []
            let row: Int64
            if let bound = Keys.boundAccount(ofCommentID: key) {
                var record = try tx.loadComment(key: key)
                for i in indices {
                    let change = changes[i]
                    var creation: CommentCreation?
                    if case .creation(let c) = change.parsed { creation = c }
                    MergeEngine.mergeComment(&record, bound: bound, Held(stamp: change.stamp, incoming: Int32(i)),
                                             field: change.field, value: change.value, creation: creation, &outcome)
                }
                // Nothing survives without changing the record, so an untouched comment needs no row.
                row = record.changed ? try tx.saveComment(key: key, row: record.row, view(of: record, bound: bound))
                                     : record.row ?? 0
            } else {
                row = try mergeUnboundComment(key: key, indices: indices, changes: changes, outcome: &outcome)
            }
            for i in indices { targetRow[i] = row }
            touched.comments.append(keyID)
        }

        // The change log: surviving changes in, superseded ones out.
        for (i, change) in changes.enumerated() where outcome.survives[i] {
            try tx.insertChange(origin: change.origin.row, seq: change.seq, hlc: change.hlc, entity: change.entity,
                                target: targetRow[i], field: change.field, value: change.value,
                                inRow: change.entity == .article)
        }
        for entry in outcome.deletes { try tx.deleteChange(origin: entry.origin, seq: entry.seq) }
        return touched
    }

    private func articleRow(keyID: Int32, keys: BundleKeyTable) throws -> Int64 {
        if let row = articleRows[keyID] { return row }
        guard let row = try tx.articleRow(key: keys[keyID], create: true) else {
            throw ReaderSyncError.storage("cannot make a row for article \(keys[keyID])")
        }
        articleRows[keyID] = row
        return row
    }

    func view(of record: CommentRecord, bound: String) -> StoreTransaction.CommentView {
        func clock(_ held: Held?) -> (hlc: UInt64, origin: Int64?, seq: UInt64?)? {
            held.map { ($0.stamp.hlc, $0.stamp.origin.row, $0.stamp.seq) }
        }
        return StoreTransaction.CommentView(
            articleKey: record.creation?.record.article, parentKey: record.creation?.record.parent, author: bound,
            body: record.deleted == nil ? record.body?.value ?? "" : "", created: clock(record.creation?.held),
            edited: clock(record.body?.held), deleted: clock(record.deleted), extras: 0)
    }

    /// A comment whose id is not bound to an account (written by older versions): its retained changes are all
    /// kept in `retained_extra`, and each merge runs the reference rules over them.
    private func mergeUnboundComment(key: String, indices: [Int], changes: [IncomingChange],
                                     outcome: inout MergeOutcome) throws -> Int64 {
        let existingRow = try tx.commentRow(key: key)
        var entries: [MergeEntry] = []
        var existing: [Int64: (origin: Int64, seq: UInt64)] = [:]
        if let existingRow {
            for (n, entry) in try tx.extras(entity: .comment, target: existingRow.row, accountRow: 0).enumerated() {
                guard let change = try tx.change(origin: entry.origin, seq: entry.seq), let value = change.value else {
                    throw ReaderSyncError.storage("a retained change of comment \(key) is missing from the change log")
                }
                let origin = try tx.origin(row: entry.origin)
                let id = -Int64(n) - 1
                existing[id] = entry
                entries.append(MergeEntry(localSeq: id, origin: origin.replica, originAccount: origin.account, seq: entry.seq,
                                          hlc: HLCTimestamp(rawValue: change.hlc), field: change.field.name, value: value))
            }
        }
        for i in indices {
            let c = changes[i]
            entries.append(MergeEntry(localSeq: Int64(i), origin: c.origin.replica, originAccount: c.origin.account, seq: c.seq,
                                      hlc: HLCTimestamp(rawValue: c.hlc), field: c.field.name, value: c.value))
        }
        let (state, superseded) = MergeRules.comment(entries, commentID: key)
        let dropped = Set(superseded)
        var retained: [(origin: Int64, seq: UInt64)] = []
        for entry in entries {
            if entry.localSeq < 0 {
                guard let e = existing[entry.localSeq] else { continue }
                if dropped.contains(entry.localSeq) { outcome.deletes.append(e) } else { retained.append(e) }
            } else {
                let i = Int(entry.localSeq)
                if dropped.contains(entry.localSeq) { outcome.survives[i] = false } else {
                    retained.append((changes[i].origin.row, changes[i].seq))
                }
            }
        }
        var view = StoreTransaction.CommentView(articleKey: nil, parentKey: nil, author: nil, body: "", created: nil,
                                                edited: nil, deleted: nil, extras: retained.count)
        if let state {
            view.articleKey = state.articleID
            view.parentKey = state.parentID
            view.author = state.author
            view.body = state.body
            view.created = (state.createdHLC.rawValue, nil, nil)
            view.edited = state.editedHLC.map { ($0.rawValue, nil, nil) }
            view.deleted = state.isDeleted ? (state.createdHLC.rawValue, nil, nil) : nil
        }
        let row = try tx.saveComment(key: key, row: existingRow?.row, view)
        try tx.replaceExtras(entity: .comment, target: row, accountRow: 0, with: retained)
        return row
    }
}
