// How a pool function's values travel: its arguments encoded one after another in the wire
// format (WireCoding.swift), or, when they are all plain numbers, packed (PackedLayout.swift);
// its result likewise.

extension PoolFunction {
    /// Encodes one call's arguments, one after another.
    @usableFromInline
    func encodeArguments(_ arguments: repeat each Argument, into writer: inout ByteWriter) throws
    where repeat each Argument: Encodable {
        repeat try WireCoding.encode(each arguments, into: &writer)
    }

    /// Decodes one call's arguments.
    func decodeArguments(from reader: inout ByteReader) throws -> (repeat each Argument)
    where repeat each Argument: Decodable {
        (repeat try WireCoding.decode((each Argument).self, from: &reader))
    }

    /// The stride of this function's argument tuple when every argument is a plain number (see
    /// ``PackedLayout``): its items then travel packed.
    var packedArgumentStride: Int? { PackedLayout.stride(of: repeat (each Argument).self) }

    /// The stride of the result when it is a plain number: results then come back packed.
    var packedResultStride: Int? { PackedLayout.stride(of: Result.self) }
}
