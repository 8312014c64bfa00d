/// How the generation identifiers change over the life of a resource, following DRBD 8.4
/// (`drbd_uuid_new_current`, `drbd_uuid_set_bm`, `drbd_uuid_set`, the sync-UUID exchange at the
/// start of a resync and the UUID hand-over when it finishes). See Docs/Resync.md for a worked
/// example.
///
/// Conventions kept by every function here:
/// - the lowest bit of the *current* identifier records whether the node was Primary when the
///   generation was set; comparisons ignore it (`currentIgnoringRole`);
/// - `history` keeps exactly `historyCount` entries, newest first; pushing drops the oldest;
/// - new identifiers are passed in (the caller draws them from its random source), so all of
///   this is pure.
extension GenerationIdentifiers {
    /// DRBD's `UUID_NEW_BM_OFFSET`: a SyncSource derives its sync UUID from its bitmap UUID by
    /// adding this, so that a lost sync-UUID packet can be recognised and undone (rules 51 and 71).
    public static let syncUUIDOffset: UInt64 = 0x0001_0000_0000_0000

    /// The current identifier with the role bit masked, as every comparison uses it.
    public var currentIgnoringRole: UInt64 { current & ~1 }

    /// Whether these identifiers hold the data of generation `generation` or data grown from it:
    /// it is the current generation, the bitmap generation, or in the history (role bits ignored).
    public func includes(_ generation: UInt64) -> Bool {
        let wanted = generation & ~1
        guard wanted != 0 else { return true }
        return currentIgnoringRole == wanted || bitmap & ~1 == wanted || history.contains { $0 & ~1 == wanted }
    }

    /// The bitmap identifier with the role bit masked.
    public var bitmapIgnoringRole: UInt64 { bitmap & ~1 }

    /// The role bit of the bitmap identifier: this node was Primary when the generation the
    /// bitmap starts from ended, i.e. when its data diverged from the peer's. The split-brain
    /// policies `discard-younger-primary` and `discard-older-primary` decide by it.
    public var primaryWhenBitmapStarted: Bool { bitmap & 1 == 1 }

    /// DRBD's `drbd_set_role`: the role bit of the current identifier follows the role, set on
    /// every promotion and cleared on every demotion, also while connected. `startNewCurrent`
    /// copies the current identifier, role bit included, into the bitmap slot, which is how
    /// `primaryWhenBitmapStarted` learns whether the node was Primary when the data diverged.
    /// A promotion that starts a new generation calls `startNewCurrent(_:primary: true)` first
    /// (the old current, with the bit of the role it had, becomes the bitmap UUID), which also
    /// sets the bit on the new current. Comparisons ignore the bit.
    public mutating func recordRole(primary: Bool) {
        current = GenerationIdentifiers.withRole(current, primary: primary)
    }

    /// Whether this disk has never held a data generation: fresh metadata (`justCreated`) or no
    /// identifier at all (0).
    public var isJustCreated: Bool {
        let value = currentIgnoringRole
        return value == GenerationIdentifiers.justCreated || value == 0
    }

    /// History entry `index` (newest first), 0 when the slot does not exist.
    func historyEntry(_ index: Int) -> UInt64 {
        index < history.count ? history[index] : 0
    }

    /// Puts `value` in front of the history; the oldest entry falls off.
    mutating func pushHistory(_ value: UInt64) {
        history = GenerationIdentifiers.normalised([value] + history)
    }

    static func withRole(_ value: UInt64, primary: Bool) -> UInt64 {
        primary ? value | 1 : value & ~1
    }

    /// DRBD's `drbd_uuid_new_current`: the data starts a new generation that the peer does not
    /// have (promotion while disconnected, losing the peer while Primary, forced promotion).
    ///
    /// The old current becomes the bitmap UUID if the bitmap UUID is 0, so the bitmap records the
    /// changes since the generation the peer still holds. If the bitmap UUID is already set, it is
    /// kept: the bitmap has been recording since that older generation, which is the one the peer
    /// holds, and the old current is dropped (no peer can hold it, as none has been in sync with
    /// us since the bitmap UUID was set). `newUUID` becomes current, with the low bit set when
    /// `primary`.
    public mutating func startNewCurrent(_ newUUID: UInt64, primary: Bool) {
        if bitmap == 0 {
            bitmap = current
        }
        current = GenerationIdentifiers.withRole(newUUID, primary: primary)
    }

    /// Begin tracking changes for a peer that went away: the bitmap UUID becomes the current
    /// UUID if it is 0 (otherwise the bitmap is already tracking since an older generation).
    public mutating func startTracking() {
        if bitmap == 0 {
            bitmap = current
        }
    }

    /// Resync finished, or the peer is in sync again (DRBD's `drbd_uuid_set_bm(0)`): the bitmap
    /// UUID moves to the front of the history and the bitmap UUID becomes 0. Nothing happens when
    /// the bitmap UUID is already 0.
    public mutating func clearBitmapUUID() {
        guard bitmap != 0 else { return }
        pushHistory(bitmap)
        bitmap = 0
    }

    /// A SyncTarget takes over the SyncSource's generations, as DRBD does when the resync
    /// finishes: current := the source's current, bitmap := 0, and the history becomes what the
    /// source's history is once the source clears its bitmap UUID (its bitmap UUID, if set, in
    /// front of its history). Afterwards both sides hold identical identifiers.
    ///
    /// Pass the source's identifiers as they are once it has stamped its sync UUID
    /// (`startSyncAsSource`), or as they are at the end of the resync; both give the result DRBD
    /// reaches. The role bit of the new current is cleared (a SyncTarget is Secondary); use
    /// `adoptFromSyncSource(_:primary:)` for a Primary SyncTarget.
    public mutating func adoptFromSyncSource(_ source: GenerationIdentifiers) {
        adoptFromSyncSource(source, primary: false)
    }

    /// `adoptFromSyncSource(_:)` with the role bit of the new current set when `primary`.
    public mutating func adoptFromSyncSource(_ source: GenerationIdentifiers, primary: Bool) {
        var adopted = source
        adopted.history = GenerationIdentifiers.normalised(source.history)
        adopted.clearBitmapUUID()
        adopted.current = GenerationIdentifiers.withRole(source.current, primary: primary)
        self = adopted
    }

    /// `repd new-current-uuid --clear-bitmap` (DRBD's `new-current-uuid --clear-bitmap`): declare
    /// the data on both disks identical without a resync. The caller clears the dirty bitmap.
    ///
    /// As in DRBD the old bitmap UUID (if any) moves into the history and the old current would
    /// become the bitmap UUID; when the old current is `justCreated` (the "skip the initial sync
    /// of empty disks" case) the bitmap UUID ends up 0, as DRBD leaves it on the connected node.
    /// The peer, still `justCreated`, takes the new current with `adoptSkippingInitialSync(_:)`.
    /// The role bit of the old current is kept.
    public mutating func newCurrentClearingBitmap(_ newUUID: UInt64) {
        let wasPrimary = current & 1 == 1
        clearBitmapUUID()
        bitmap = isJustCreated ? 0 : current
        current = GenerationIdentifiers.withRole(newUUID, primary: wasPrimary)
    }

    /// The peer ran `new-current-uuid --clear-bitmap` on empty disks (DRBD: UUID flag 8 received
    /// while our current is `justCreated`): take its current and skip the initial sync. Does
    /// nothing and returns false unless this disk is just created.
    @discardableResult
    public mutating func adoptSkippingInitialSync(_ peerCurrent: UInt64) -> Bool {
        guard currentIgnoringRole == GenerationIdentifiers.justCreated else { return false }
        current = peerCurrent & ~1
        bitmap = 0
        return true
    }

    /// The SyncSource stamps its bitmap UUID at the start of a resync (DRBD's
    /// `drbd_gen_and_send_sync_uuid`) and returns the sync UUID to send to the target: the bitmap
    /// UUID plus `syncUUIDOffset`, or `randomUUID` when the bitmap UUID is 0 or `justCreated`.
    /// The old bitmap UUID, if set, moves into the history.
    public mutating func startSyncAsSource(randomUUID: UInt64) -> UInt64 {
        let base = bitmap & ~1
        let sync = (base == 0 || base == GenerationIdentifiers.justCreated)
            ? randomUUID
            : bitmap &+ GenerationIdentifiers.syncUUIDOffset
        if bitmap != 0 {
            pushHistory(bitmap)
        }
        bitmap = sync
        return sync
    }

    /// The SyncTarget takes the sync UUID at the start of a resync (DRBD's `receive_sync_uuid`):
    /// current := the sync UUID, bitmap := 0, history unchanged. Until the resync finishes
    /// (`adoptFromSyncSource`) the target's current is the source's bitmap UUID, so an
    /// interrupted resync resumes from the source's bitmap (rule 50/70).
    public mutating func startSyncAsTarget(syncUUID: UInt64, primary: Bool = false) {
        current = GenerationIdentifiers.withRole(syncUUID, primary: primary)
        bitmap = 0
    }
}

extension GenerationIdentifiers {
    /// A generation UUID as operators see it: 16 upper-case hex digits, as drbdadm shows them.
    public static func text(_ uuid: UInt64) -> String {
        let digits = String(uuid, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
