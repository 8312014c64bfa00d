import RepdEngine
import RepdSystem

/// The backing disk coming and going: what the driver does when the engine lets go of it (the
/// farewell metadata, the failure record) and `repd attach`.
extension Resource {
    /// The engine dropped the disk: its farewell (bitmap, superblock with `disk-failed`) goes to
    /// the disk if it still takes writes, and a failure is recorded in the run directory, so that
    /// the disk stays out of use until `repd attach`. The disk closes once its last request returns.
    func diskDetached(_ disk: BackingDisk?, _ failure: DiskFailure?, farewell: MetadataWrite) {
        let usable = state.withLockedValue { $0.engine.configuration.usableSize }
        let run = self.run
        let logger = self.logger
        metadataQueue.async {
            var bitmapLost = false
            if let disk {
                if let error = Self.write(farewell, to: disk.metadata) {
                    bitmapLost = true
                    logger.warning("the detached disk's metadata could not be written (\(error)): an attach of this disk resyncs every block")
                } else {
                    logger.info("the detached disk's bitmap and superblock are written")
                }
            }
            guard failure?.keepsDiskOut == true || bitmapLost else { return }
            let record = DiskFailureRecord(
                failure: failure ?? DiskFailure(cause: .ioError, operation: "metadata write", at: ProcessSupport.unixTime(), detail: "the farewell metadata write failed"),
                usableSize: usable, bitmapLost: bitmapLost)
            do throws(SystemError) {
                try record.save(run)
            } catch {
                logger.error("cannot record the disk failure in \(DiskFailureRecord.path(run)): \(error); the disk's metadata carries it if it could be written")
            }
        }
    }

    /// `repd attach`: opens the disk (the same one, or a new one made with `create-md`) and hands
    /// it to the engine, which decides the resync with the peer.
    func attachDisk() async -> (ok: Bool, message: String) {
        let (attached, busy) = state.withLockedValue { ($0.engine.diskAttached, $0.retired != nil) }
        if attached {
            return (false, "\(config.name): a disk is attached already; `repd detach \(config.name)` first")
        }
        if busy {
            return (false, "\(config.name): the detached disk still has requests in flight (a stuck disk answers late); try again once they returned")
        }
        let record = DiskFailureRecord.load(run)
        let opened: BackingDisk.Opened
        do {
            opened = try BackingDisk.open(config)
        } catch {
            return (false, "\(config.name): cannot attach \(config.local.disk): \(error)")
        }
        let disk = NewDisk(superblock: opened.superblock, bitmap: opened.bitmap, activityLogReplay: opened.replay,
                           usableSize: opened.usableSize, fullSync: record?.bitmapLost ?? false)
        let answer = await ask(attaching: opened.disk) { .attachDisk($0, disk) }
        if answer.ok {
            let run = self.run
            metadataQueue.async { DiskFailureRecord.remove(run) }
        }
        return answer
    }
}
