// How an error thrown in a worker travels back to the caller.
//
// Layout: u8 kind, then
//   kind 0 (an error thrown by the function): string type name | string description |
//           u8 has-payload | [encoded value of a registered Codable error type]
//   kind 1 (a PoolError raised by the worker runtime): u8 code | string message

enum ErrorRecord {
    /// Writes `error` as thrown by a pool function (or by the worker runtime, for `PoolError`).
    static func write(_ error: any Error, into writer: inout ByteWriter) {
        if let poolError = error as? PoolError {
            writer.writeUInt8(1)
            writer.writeUInt8(poolError.code.storage.rawValue)
            writer.writeString(poolError.message)
            return
        }
        let typeName = ErrorTypeRegistry.name(of: type(of: error))
        writer.writeUInt8(0)
        writer.writeString(typeName)
        writer.writeString(String(describing: error))
        if let entry = ErrorTypeRegistry.shared.entry(named: typeName) {
            var payload = ByteWriter()
            if (try? entry.encode(error, &payload)) != nil {
                writer.writeUInt8(1)
                writer.writeBytes(payload.bytes)
                return
            }
        }
        writer.writeUInt8(0)
    }

    /// Reads an error written by ``write(_:into:)``: the registered error type itself when this
    /// process knows it, else a ``RemoteError`` or ``PoolError`` carrying the context.
    static func read(
        from reader: inout ByteReader, functionName: String, workerPID: Int32
    ) throws
        -> any Error & Sendable
    {
        switch try reader.readUInt8() {
        case 0:
            let typeName = try reader.readString()
            let message = try reader.readString()
            let remote = RemoteError(
                typeName: typeName, message: message, functionName: functionName, workerPID: workerPID)
            if try reader.readUInt8() == 1, let entry = ErrorTypeRegistry.shared.entry(named: typeName) {
                if let error = try? entry.decode(&reader) { return error }
            }
            return remote
        case 1:
            let raw = try reader.readUInt8()
            let message = try reader.readString()
            guard let storage = PoolError.Code.Storage(rawValue: raw) else {
                throw FrameError(description: "unknown error code \(raw)")
            }
            return PoolError(
                PoolError.Code(storage: storage), message, functionName: functionName, workerPID: workerPID)
        case let kind:
            throw FrameError(description: "unknown error record kind \(kind)")
        }
    }
}
