import Foundation
import GRDB

/// Rebuilds one target's row from its retained changes with the reference rules (``MergeRules``): the rare path
/// that needs a target's history — the v1 migration, and an identity change (which renames an origin's changes).
enum Rebuild {
    /// A retained change of the target being rebuilt.
    struct Entry {
        var origin: OriginRef
        var seq: UInt64
        var hlc: UInt64
        var field: FieldCode
        var value: ChangeValue

        var stamp: Stamp { Stamp(hlc: hlc, origin: origin, seq: seq) }
    }

    /// Rebuilds the row of the target (`entity`, `key`; `accountRow` for a read state) from `entries`, the
    /// target's retained changes, and returns the entries that stay retained. With `insert`, the retained
    /// changes are written to the change log (the migration); otherwise they must already be there, and the
    /// superseded ones are deleted.
    @discardableResult
    static func target(_ tx: StoreTransaction, entity: EntityKind, key: String, accountRow: Int64?,
                       entries: [Entry], insert: Bool) throws -> [Entry] {
        let merged = entries.enumerated().map { i, e in
            MergeEntry(localSeq: Int64(i), origin: e.origin.replica, originAccount: e.origin.account, seq: e.seq,
                       hlc: HLCTimestamp(rawValue: e.hlc), field: e.field.name, value: e.value)
        }
        let superseded: Set<Int64>
        var target: Int64 = 0
        switch entity {
        case .article:
            let (_, dropped) = MergeRules.article(merged)
            superseded = Set(dropped)
            let retained = entries.indices.filter { !superseded.contains(Int64($0)) }
            var record = try tx.loadArticle(key: key)
            if let i = retained.first, case .string(let text) = entries[i].value,
               let content = try? ArticleContent.decode(text) {
                record.winner = .existing(entries[i].stamp)
                record.newContent = content
                target = try tx.saveArticle(key: key, record)
            } else {
                target = try tx.articleRow(key: key, create: true) ?? 0
            }
        case .readState:
            guard let accountRow else { throw ReaderSyncError.storage("a read state needs an account") }
            let (_, dropped) = MergeRules.readState(merged)
            superseded = Set(dropped)
            target = try tx.articleRow(key: key, create: true) ?? 0
            let existing = try tx.loadReadState(accountRow: accountRow, articleRow: target)
            var record = ReadStateRecord(exists: existing.exists)
            for (i, e) in entries.enumerated() where !superseded.contains(Int64(i)) {
                let held = Held.existing(e.stamp)
                switch (e.field, e.value) {
                case (.read, .int(let t)): record.read = (held, t)
                case (.read, _): record.read = (held, nil)
                case (.saved, .int(let t)): record.saved = (held, t)
                case (.saved, _): record.saved = (held, nil)
                case (.progress, .double(let p)): record.frontier.append((held, p))
                case (.progress, _): record.reset = held
                default: break
                }
            }
            record.frontier.sort { $0.held.stamp.precedes($1.held.stamp) }
            record.storedExtras = existing.storedExtras
            record.frontierChanged = true
            try tx.saveReadState(accountRow: accountRow, articleRow: target, record)
        case .comment:
            let (state, dropped) = MergeRules.comment(merged, commentID: key)
            superseded = Set(dropped)
            let existingRow = try tx.commentRow(key: key)?.row
            if let bound = Keys.boundAccount(ofCommentID: key) {
                var record = CommentRecord(row: existingRow)
                for (i, e) in entries.enumerated() where !superseded.contains(Int64(i)) {
                    let held = Held.existing(e.stamp)
                    switch (e.field, e.value) {
                    case (.created, .string(let text)):
                        if let creation = try? CommentCreation.decode(text, commentID: key) { record.creation = (held, creation) }
                    case (.body, .string(let text)): record.body = (held, text)
                    case (.deleted, _): record.deleted = held
                    default: break
                    }
                }
                target = try tx.saveComment(key: key, row: existingRow, Merger(tx).view(of: record, bound: bound))
            } else {
                let retained = entries.indices.filter { !superseded.contains(Int64($0)) }
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
                target = try tx.saveComment(key: key, row: existingRow, view)
                try tx.replaceExtras(entity: .comment, target: target, accountRow: 0,
                                     with: retained.map { (entries[$0].origin.row, entries[$0].seq) })
            }
        }
        var kept: [Entry] = []
        for (i, e) in entries.enumerated() {
            if superseded.contains(Int64(i)) {
                if !insert { try tx.deleteChange(origin: e.origin.row, seq: e.seq) }
            } else {
                kept.append(e)
                if insert {
                    try tx.insertChange(origin: e.origin.row, seq: e.seq, hlc: e.hlc, entity: entity, target: target,
                                        field: e.field, value: e.value, inRow: entity == .article)
                }
            }
        }
        return kept
    }
}
