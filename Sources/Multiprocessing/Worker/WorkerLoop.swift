// The worker process's side: after `Pool.bootstrap` finds it is a worker, this serves tasks from
// the parent until the task pipe closes, then exits. It never returns to the program's `main`.
//
// A task of a function with a synchronous body is served synchronously: read the frame, run the
// chunk, write the result, with no async call (see ChunkRunner.swift); only an `async` body's
// chunk is awaited. The loop itself is async for those, and for the initializer.

import CMultiprocessing
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

enum WorkerLoop {
    /// Serves tasks from its shared channel (fd 5), whose doorbells are fds 3 (tasks in) and 4
    /// (results out), and exits the process.
    /// `Pool.bootstrap` has already made the process die with its parent (`WorkerSignals`).
    static func serve(functions: [String: any ChunkRunner]) async -> Never {
        let pid = getpid()
        // Payload buffers of the same sizes come and go chunk after chunk: reuse their memory
        // rather than fault in fresh pages for each (measured: echo of 4 MiB items ~+45%; at most
        // about 32 MiB of freed memory is kept).
        keepFreedMemoryForReuse()

        do {
            // The channels are ours alone: programs the task starts must not inherit them. They
            // stay open for the process's life (the kernel closes them at its exit, which is how
            // the parent hears of it), so nothing here owns them to close. The shared memory
            // stays mapped for the process's life too; its descriptor is closed once mapped.
            try setCloseOnExec(WorkerDescriptors.tasks)
            try setCloseOnExec(WorkerDescriptors.results)
            try setNonBlocking(WorkerDescriptors.tasks)
            let channel = try SharedChannel.attach(fd: WorkerDescriptors.channel)
            closeDescriptor(WorkerDescriptors.channel)
            // The writer keeps the channel mapped for the process's life (the reader's ring is a
            // view of the same memory).
            let output = ResultWriter(ring: channel.results, doorbell: WorkerDescriptors.results, channel: channel)
            workerResultStream.withLock { $0 = output }
            // The parent waits for room in the task ring on its doorbell, the result pipe.
            var tasks = BlockingFrameReader(
                ring: channel.tasks, doorbell: WorkerDescriptors.tasks,
                wakeProducer: .doorbell(WorkerDescriptors.results))
            tasks.idle = { final in output.settleDoorbell(final: final) }
            // Settled below, once the task's header says whether held results may wait for it.
            tasks.callerSettlesOnHandOut = true
            tasks.producerCPU = channel.workerCPUNotes
            // Chunks of plain numbers run from the task ring itself (see ``runInPlace``).
            tasks.takesPackedItemsInPlace = true
            guard let start = try tasks.next() else { exit(0) }
            guard start.kind == FrameKind.start.rawValue else {
                throw FrameError(description: "expected a start frame, got kind \(start.kind)")
            }
            var reader = start.bodyReader
            var initializer: (name: String, signature: UInt64, arguments: ByteReader)?
            if try reader.readUInt8() == 1 {
                let name = try reader.readString()
                let signature = try reader.readUInt64()
                let length = Int(try reader.readUInt32())
                let arguments = ByteReader(
                    reader.bytes, offset: reader.offset, end: reader.offset + length, attachments: reader.attachments)
                try reader.skip(length)
                initializer = (name, signature, arguments)
            }
            let maxMemory = Int(clamping: try reader.readUInt64())
            let memoryLimit = Int(clamping: try reader.readUInt64())
            if memoryLimit > 0 {
                do {
                    try limitOwnMemory(to: memoryLimit)
                } catch {
                    sendInitializerFailure(error, to: output)
                    exit(1)
                }
            }
            if let (name, signature, initArguments) = initializer {
                var arguments = initArguments
                do {
                    guard let function = functions[name], function.signatureFingerprint == signature else {
                        throw PoolError(
                            .functionNotRegistered,
                            "the initializer '\(name)' is not among the functions this worker serves "
                                + "(Pool.bootstrap(serving:)), or is registered there with other types",
                            functionName: name)
                    }
                    try await function.runOnce(&arguments)
                } catch {
                    sendInitializerFailure(error, to: output)
                    exit(1)
                }
            }
            var ready = ByteWriter()
            let frame = ready.beginFrame(.ready)
            ready.writeUInt32(UInt32(bitPattern: pid))
            ready.finishFrame(startingAt: frame)
            output.send(OutgoingFrame(bytes: ready.bytes))
            // While idle: the rings' first pages, off the first large job's path (RingPrefault.swift).
            var prefault = RingPrefault([channel.tasks, channel.results])
            tasks.background = { prefault.step() }

            // The served functions, each in a box: a task's function is one reference, not a
            // copy of the function's fields (a retain each).
            let table = functions.mapValues(Served.init)
            // The function of the last task: a loop of calls of one function looks it up once
            // (hashing its name costs more than comparing it).
            var last: Served?
            while let task = try tasks.next() {
                guard task.kind == FrameKind.task.rawValue else {
                    throw FrameError(description: "expected a task frame, got kind \(task.kind)")
                }
                // A parent spinning for this task's result looks where this worker runs.
                channel.workerCPUNotes.note()
                var reader = task.bodyReader
                let header = try TaskHeader.read(from: &reader, knownName: last?.name)
                output.settleDoorbell(taking: header, moreQueued: tasks.moreQueued)
                var results = ResultFrameBuilder(
                    job: header.job, chunkIndex: header.chunkIndex, attachingLargeBytes: true)
                let served: Served?
                if let last, last.name == header.functionName {
                    served = last
                } else {
                    served = table[header.functionName]
                    if served != nil { last = served }
                }
                // Run from the task ring, its outcomes in `results` (see ``runInPlace``).
                var ranInPlace = false
                if let items = tasks.itemsInRing {
                    if let served, served.signatureFingerprint == header.signature,
                        let stride = served.runner.packedResultStride(forItemsOf: header, itemBytes: items.count)
                    {
                        if runInPlace(
                            served, items, header: header, resultStride: stride, tasks: &tasks, output: output,
                            reserving: maxMemory == 0, into: &results)
                        {
                            let spin = header.lone ? LocalTransport.directWaitSpin : .zero
                            if tasks.spin != spin { tasks.spin = spin }
                            continue
                        }
                        ranInPlace = true
                    } else {
                        // Not for the packed loop: the items as the frame's attachment, as they
                        // would have come.
                        reader = ByteReader(
                            task.bytes, offset: reader.offset, end: task.bodyEnd, attachments: [Array(items)])
                        tasks.releaseItemsInRing()
                    }
                }
                if ranInPlace {
                    // Its outcomes are in `results`, to go the usual way.
                } else if let served, served.signatureFingerprint == header.signature {
                    // How long the items took: a stream without a chunksize sizes its chunks by it.
                    let started = MonotonicInstant.now
                    if served.isSynchronous {
                        servedChunks.countSynchronous()
                        try served.runner.runChunkSynchronously(&reader, header: header, into: &results)
                    } else {
                        servedChunks.countAsynchronous()
                        try await served.runner.runChunk(&reader, header: header, into: &results)
                    }
                    results.setRunDuration(
                        nanoseconds: UInt64(max(0, MonotonicInstant.now.nanoseconds - started.nanoseconds)))
                } else {
                    let known = functions[header.functionName]
                    let reason =
                        known == nil
                        ? "the workers do not serve '\(header.functionName)': add it to Pool.bootstrap(serving:) "
                            + "in the worker executable's main"
                        : "the workers serve '\(header.functionName)' with other types (\(known!.signature))"
                    let error = PoolError(.functionNotRegistered, reason, functionName: header.functionName)
                    for _ in 0..<(header.stopOnError ? 1 : header.itemCount) { results.appendError(error) }
                }
                // What the task printed reaches its destination before the parent hears back.
                _ = cmp_flush_printed_output()
                // Above the pool's memory bound: say so before the result, so that the parent
                // sends no new chunk here and replaces this worker once the result is in.
                if maxMemory > 0, let resident = residentMemoryBytes(), resident > maxMemory {
                    var report = ByteWriter()
                    let frame = report.beginFrame(.overMemory)
                    report.writeUInt64(UInt64(resident))
                    report.finishFrame(startingAt: frame)
                    output.send(OutgoingFrame(bytes: report.bytes))
                }
                // A failed item's result is rung for at once: the parent stops the rest of a
                // job that stops at its first failure.
                let doorbell: ResultWriter.Doorbell = results.anyFailed ? .now : header.doorbell
                output.send(results.finishWithAttachments(), doorbell: doorbell)
                // After a lone call, the next one may follow at once (a loop of `apply`): poll
                // for it a little before sleeping, which saves the wake-up of a sleeping process.
                // Not after chunks of bigger jobs: a worker polling then takes a core from the
                // parent, which is then what the job waits for.
                let spin = header.lone ? LocalTransport.directWaitSpin : .zero
                if tasks.spin != spin { tasks.spin = spin }
            }
            exit(0)
        } catch {
            // The parent is gone or sent something unreadable: nothing sensible is left to do.
            let message = "swift-multiprocessing worker \(pid): \(error)\n"
            message.withCString { text in _ = bestEffort("write(stderr)") { write(STDERR_FILENO, text, strlen(text)) } }
            exit(70)
        }
    }

    /// Runs a chunk of packed items from where they lie in the task ring (`items`), with no copy
    /// of them and no buffer of their own: a fresh pool's first `starmap` of 1e6 pairs spent
    /// about 1 ms per worker copying its first chunk's 2 MB out of the ring into memory new to
    /// the process. The results are stored in place in the result ring too when `reserving`
    /// (no memory report can have to go before them) and the ring has room for the whole frame;
    /// the frame is then published here and this returns true. Otherwise (or when a call threw)
    /// they are in `results`, with the run time, for the caller to send, and this returns false.
    /// The items' bytes are freed either way.
    private static func runInPlace(
        _ served: Served, _ items: UnsafeRawBufferPointer, header: TaskHeader, resultStride: Int,
        tasks: inout BlockingFrameReader, output: ResultWriter, reserving: Bool, into results: inout ResultFrameBuilder
    ) -> Bool {
        servedChunks.countSynchronous()
        let started = MonotonicInstant.now
        let reservation = reserving ? output.reservePacked(count: header.itemCount, stride: resultStride) : nil
        let stored = served.runner.runPackedItems(
            items.baseAddress!, header: header, output: reservation.map(ResultWriter.packedValues(in:)),
            into: &results)
        let nanoseconds = UInt64(max(0, MonotonicInstant.now.nanoseconds - started.nanoseconds))
        // Freed before the results go: the parent may write the next chunk meanwhile.
        tasks.releaseItemsInRing()
        // What the task printed reaches its destination before the parent hears back.
        _ = cmp_flush_printed_output()
        servedChunks.countInPlace(results: stored && reservation != nil)
        if stored, let reservation {
            output.publishPacked(
                reservation, job: header.job, chunkIndex: header.chunkIndex, count: header.itemCount,
                stride: resultStride, runNanoseconds: nanoseconds, doorbell: header.doorbell)
            return true
        }
        results.setRunDuration(nanoseconds: nanoseconds)
        return false
    }

    /// A served function, boxed (see where the table is made), with what each task asks of it.
    final class Served: Sendable {
        let name: String
        let runner: any ChunkRunner
        let signatureFingerprint: UInt64
        /// Whether its chunks run synchronously (``ChunkRunner/runChunkSynchronously(_:header:into:)``).
        let isSynchronous: Bool

        init(_ runner: any ChunkRunner) {
            self.name = runner.name
            self.runner = runner
            self.signatureFingerprint = runner.signatureFingerprint
            self.isSynchronous = runner.isSynchronous
        }
    }

    /// The worker cannot serve (its initializer threw, its memory limit cannot hold it): the
    /// parent counts it as an initializer failure.
    private static func sendInitializerFailure(_ error: any Error, to output: ResultWriter) {
        var writer = ByteWriter()
        let frame = writer.beginFrame(.initializerFailed)
        ErrorRecord.write(error, into: &writer)
        writer.finishFrame(startingAt: frame)
        output.send(OutgoingFrame(bytes: writer.bytes))
    }

    /// Sets the pool's `workerMemoryLimit` on this process, before the initializer and every
    /// task. Set here rather than by the parent at the spawn, which would race with the
    /// program's loading: a limit landing in the middle of it fails in the dynamic loader or the
    /// runtime's start, where a crash can wait forever on a lock it holds.
    /// - Throws: `PoolError.invalidArgument` when the limit leaves too little room above what
    ///   this process already uses (its crash report alone needs a few MiB).
    private static func limitOwnMemory(to limit: Int) throws {
        let headroom = 4 << 20
        if let used = dataSegmentBytes(), used + headroom > limit {
            throw PoolError(
                .invalidArgument,
                "workerMemoryLimit of \(limit) bytes (\(limit >> 20) MiB) is too low: a worker already uses "
                    + "\(used >> 20) MiB (heap and thread stacks, 8 MiB each) before it runs anything, and needs "
                    + "a few MiB more")
        }
        do {
            try limitDataSegment(to: limit)
        } catch {
            throw PoolError(.invalidArgument, "workerMemoryLimit could not be set: \(error)", underlying: error)
        }
    }

}
