// The packed loop's steps around a chunk, as functions generic over the result type only.
//
// A worker reaches a function's coded calls through the closures its initializer stored
// (PoolFunction+CodedCalls.swift), which hold the argument and result types, not the
// function's own type. Calling a method of `PoolFunction` from there makes the runtime look up
// `PoolFunction<repeat each Argument, Result>`'s metadata from its parameter pack first (a
// cache keyed by the whole pack: ~370 instructions), and the packed path did it twice a task:
// 750 of the worker's ~5,900 instructions for one `apply` (callgrind, `pool-workloads apply`).
// These functions read the function's fields, which need no metadata, and take the result type
// as a parameter; only the path of encoded items, which does far more per item, still calls the
// function's methods.

/// A packed chunk's run: the calls that threw, in order, and how many calls ran.
struct PackedRun {
    var failures: [PackedFailure]
    var run: Int
}

/// Runs a chunk of encoded or packed calls of a synchronous body: the packed loop when the chunk
/// is what it expects (packed arguments of the function's stride, all there), else item by item.
/// ``ChunkRunner/runChunkSynchronously(_:header:into:)`` of every function with `Codable` types.
func runChunkSynchronously<each Argument: Codable, Result: Codable>(
    _ function: PoolFunction<repeat each Argument, Result>, _ reader: inout ByteReader, header: TaskHeader,
    into results: inout ResultFrameBuilder
) throws {
    try readAttachedItems(&reader, header: header)
    // `packedCallStride` is the argument stride, stored: worked out here (a tuple's metadata) it
    // cost 1.3k instructions a chunk.
    if let stride = header.packedStride, let runner = function.packedRunner, stride == function.packedCallStride,
        PackedLayout.fits(header.itemCount, of: stride, in: reader.remaining)
    {
        try runPackedChunk(
            runner, &reader, header: header, stride: stride, functionName: function.name, resultType: Result.self,
            into: &results)
        return
    }
    // Anything else goes the generic way, which answers an error per item it cannot run (and
    // refuses an async body: only a synchronous one has a packed loop).
    try function.runCodedItemsSynchronously(&reader, header: header, into: &results)
}

/// Packed items that came after the frame: `reader` then reads them where they are.
func readAttachedItems(_ reader: inout ByteReader, header: TaskHeader) throws {
    guard header.packedItemsAttached else { return }
    guard header.packedStride != nil, reader.attachments.count == 1 else {
        throw FrameError(description: "a chunk's attached packed items are missing")
    }
    reader = ByteReader(reader.attachments[0])
}

/// The packed loop over the chunk's items in `reader`: packed arguments in, packed results out,
/// through the loop compiled for the function's concrete types
/// (``PoolFunction/makePackedRunner(_:)``).
func runPackedChunk<Result: Encodable>(
    _ runner: PackedRunner, _ reader: inout ByteReader, header: TaskHeader, stride: Int, functionName: String,
    resultType: Result.Type, into results: inout ResultFrameBuilder
) throws {
    let offset = reader.offset
    reader.bytes.withUnsafeBytes { input in
        runPackedChunk(
            runner, input.baseAddress.map { $0 + offset }, header: header, stride: stride,
            functionName: functionName, resultType: resultType, into: &results)
    }
    try reader.skip(header.itemCount * stride)
}

/// The same over items at `input` (nil only for no items).
func runPackedChunk<Result: Encodable>(
    _ runner: PackedRunner, _ input: UnsafeRawPointer?, header: TaskHeader, stride: Int, functionName: String,
    resultType: Result.Type, into results: inout ResultFrameBuilder
) {
    let count = header.itemCount
    let resultStride = MemoryLayout<Result>.stride
    var outcome = PackedRun(failures: [], run: count)
    // The results are stored straight into the frame (no array of their own to copy them
    // from); taken back out only when some call threw.
    results.fillPacked(stride: resultStride, count: count) { output in
        guard count > 0, let input else { return }
        outcome = runPackedLoop(
            runner, input, count: count, stride: stride, output: output.baseAddress!, resultStride: resultStride,
            stopOnError: header.stopOnError)
    }
    if outcome.failures.isEmpty { return }
    let output = results.unsetPacked()
    output.withUnsafeBytes {
        appendPackedOutcomes(
            outcome, values: $0.baseAddress!, resultType: resultType, functionName: functionName, into: &results)
    }
}

/// ``ChunkRunner/runPackedItems(_:header:output:into:)``: the packed loop over items where they
/// lie, its results stored at `output` when it is given (see there for what it returns).
func runPackedItems<Result: Encodable>(
    _ runner: PackedRunner, _ items: UnsafeRawPointer, header: TaskHeader, output: UnsafeMutableRawPointer?,
    functionName: String, resultType: Result.Type, into results: inout ResultFrameBuilder
) -> Bool {
    guard let stride = header.packedStride else { preconditionFailure("'\(functionName)': these items are not packed") }
    guard let output else {
        runPackedChunk(
            runner, items, header: header, stride: stride, functionName: functionName, resultType: resultType,
            into: &results)
        return false
    }
    let count = header.itemCount
    guard count > 0 else { return true }
    let resultStride = MemoryLayout<Result>.stride
    let outcome = runPackedLoop(
        runner, items, count: count, stride: stride, output: output, resultStride: resultStride,
        stopOnError: header.stopOnError)
    if outcome.failures.isEmpty { return true }
    appendPackedOutcomes(
        outcome, values: UnsafeRawPointer(output), resultType: resultType, functionName: functionName, into: &results)
    return false
}

/// Runs `count` packed calls from `input` with results to `output`, going on past a call that
/// threw unless `stopOnError`.
private func runPackedLoop(
    _ runner: PackedRunner, _ input: UnsafeRawPointer, count: Int, stride: Int, output: UnsafeMutableRawPointer,
    resultStride: Int, stopOnError: Bool
) -> PackedRun {
    var outcome = PackedRun(failures: [], run: count)
    var start = 0
    while start < count {
        guard let failure = runner(input + start * stride, count - start, output + start * resultStride) else {
            break
        }
        outcome.failures.append(PackedFailure(index: start + failure.index, error: failure.error))
        start += failure.index + 1
        if stopOnError {
            outcome.run = start
            break
        }
    }
    return outcome
}

/// Some call threw: the chunk goes back item by item, values (stored at `values`) and errors in
/// order.
private func appendPackedOutcomes<Result: Encodable>(
    _ outcome: PackedRun, values: UnsafeRawPointer, resultType: Result.Type, functionName: String,
    into results: inout ResultFrameBuilder
) {
    let resultStride = MemoryLayout<Result>.stride
    var nextFailure = 0
    for index in 0..<outcome.run {
        if nextFailure < outcome.failures.count && outcome.failures[nextFailure].index == index {
            results.appendError(outcome.failures[nextFailure].error)
            nextFailure += 1
        } else {
            let value = values.loadUnaligned(fromByteOffset: index * resultStride, as: Result.self)
            results.appendValue(value, functionName: functionName)
        }
    }
}
