// WireCodingTests.swift
//
// Tests of the hand-written binary Codable wire format (ByteWriter/ByteReader, WireCoding):
// round trips of every kind of Codable value, byte-identical fast and slow paths, lenient
// numeric decoding, errors with coding paths, truncation at every prefix, seeded fuzzing of
// random and mutated bytes, huge declared lengths, nesting limits and skipping.

import MultiprocessingTestSupport
import Testing

@testable import Multiprocessing

// MARK: - Helpers

private func encoded<T: Encodable>(_ value: T) throws -> [UInt8] {
    var writer = ByteWriter()
    try WireCoding.encode(value, into: &writer)
    return writer.bytes
}

private func decoded<T: Decodable>(
    _ type: T.Type,
    _ bytes: [UInt8],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> T {
    var reader = ByteReader(bytes)
    let value = try WireCoding.decode(type, from: &reader)
    #expect(reader.isAtEnd, "decoding must consume the whole value", sourceLocation: sourceLocation)
    return value
}

private func roundTrip<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let back = try decoded(T.self, try encoded(value), sourceLocation: sourceLocation)
    #expect(back == value, sourceLocation: sourceLocation)
}

private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
private func varint(_ v: UInt64) -> [UInt8] {
    var w = ByteWriter()
    w.writeVarint(v)
    return w.bytes
}

// MARK: - Fixture types

private struct Address: Codable, Equatable {
    var street: String
    var zip: Int32
}

private struct Person: Codable, Equatable {
    var name: String
    var age: Int
    var height: Double
    var tags: [String]
    var address: Address
    var scores: [Double]
    var nickname: String?
    var friends: [Person]
    var flags: [Bool]
}

private enum Shape: Codable, Equatable {
    case circle(radius: Double)
    case rect(width: Int, height: Int)
    case labeled(String, Int8)
    case empty
}

private enum Color: String, Codable, CaseIterable {
    case red, green, blue
}

private indirect enum Tree: Codable, Equatable {
    case leaf(Int)
    case node([Tree])

    static func deep(_ depth: Int) -> Tree {
        var tree = Tree.leaf(depth)
        for _ in 0..<depth { tree = .node([tree]) }
        return tree
    }
}

private struct Triple: Codable, Equatable {
    var id: Int
    var name: String
    var values: [Double]
}

/// Encodes through `singleValueContainer` only: must be byte-identical to `T` itself.
private struct Wrapper<T: Codable & Equatable>: Codable, Equatable {
    var value: T
    init(_ value: T) { self.value = value }
    init(from decoder: any Decoder) throws { value = try decoder.singleValueContainer().decode(T.self) }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// Encodes `value` and `Wrapper(value)` as the two elements of an unkeyed container.
private struct UnkeyedPair<T: Codable & Equatable>: Encodable {
    var value: T
    func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        try container.encode(value)
        try container.encode(Wrapper(value))
    }
}

private class Animal: Codable {
    var name: String
    var legs: Int
    init(name: String, legs: Int) {
        self.name = name
        self.legs = legs
    }
}

/// Uses `superEncoder()` / `superDecoder()`.
private final class Dog: Animal {
    var breed: String
    var owner: String?

    enum CodingKeys: String, CodingKey { case breed, owner }

    init(name: String, breed: String, owner: String?) {
        self.breed = breed
        self.owner = owner
        super.init(name: name, legs: 4)
    }

    required init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        breed = try container.decode(String.self, forKey: .breed)
        owner = try container.decodeIfPresent(String.self, forKey: .owner)
        try super.init(from: container.superDecoder())
    }

    override func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try super.encode(to: container.superEncoder())
        try container.encode(breed, forKey: .breed)
        try container.encodeIfPresent(owner, forKey: .owner)
    }
}

/// Shares its encoder with the superclass (keys merged into one container).
private final class Cat: Animal {
    var lives: Int

    enum CodingKeys: String, CodingKey { case lives }

    init(name: String, lives: Int) {
        self.lives = lives
        super.init(name: name, legs: 4)
    }

    required init(from decoder: any Decoder) throws {
        lives = try decoder.container(keyedBy: CodingKeys.self).decode(Int.self, forKey: .lives)
        try super.init(from: decoder)
    }

    override func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(lives, forKey: .lives)
        try super.encode(to: encoder)
    }
}

private struct InvariantViolated: Error {
    var message: String
}

/// Decodes its keys in reverse order and exercises contains/allKeys/decodeIfPresent/decodeNil.
private struct Reversed: Codable, Equatable {
    var a: Int
    var b: String
    var c: [Double]
    var d: Int?
    var e: Bool?

    enum CodingKeys: String, CodingKey { case a, b, c, d, e, missing }

    init(a: Int, b: String, c: [Double], d: Int?, e: Bool?) {
        (self.a, self.b, self.c, self.d, self.e) = (a, b, c, d, e)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(a, forKey: .a)
        try container.encode(b, forKey: .b)
        try container.encode(c, forKey: .c)
        try container.encodeIfPresent(d, forKey: .d)
        if let e { try container.encode(e, forKey: .e) } else { try container.encodeNil(forKey: .e) }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let keys = container.allKeys.map(\.stringValue)
        let expected = ["a", "b", "c"] + (container.contains(.d) ? ["d"] : []) + ["e"]
        guard keys == expected else { throw InvariantViolated(message: "allKeys \(keys)") }
        guard !container.contains(.missing), container.contains(.e) else {
            throw InvariantViolated(message: "contains")
        }
        guard try container.decodeIfPresent(String.self, forKey: .missing) == nil else {
            throw InvariantViolated(message: "missing")
        }
        e = try container.decodeNil(forKey: .e) ? nil : try container.decode(Bool.self, forKey: .e)
        d = try container.decodeIfPresent(Int.self, forKey: .d)
        c = try container.decode([Double].self, forKey: .c)
        b = try container.decode(String.self, forKey: .b)
        a = try container.decode(Int.self, forKey: .a)
        // Decoding a key again works too.
        guard try container.decode(Int.self, forKey: .a) == a else { throw InvariantViolated(message: "re-decode") }
    }
}

/// Fills nested containers after the parent container has moved on.
private struct LateNested: Codable, Equatable {
    var x: Int
    var list: [Int16]
    var inner: String
    var point: [Double]

    enum CodingKeys: String, CodingKey { case x, list, nested, points }
    enum InnerKeys: String, CodingKey { case inner }

    init(x: Int, list: [Int16], inner: String, point: [Double]) {
        (self.x, self.list, self.inner, self.point) = (x, list, inner, point)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        var nested = container.nestedContainer(keyedBy: InnerKeys.self, forKey: .nested)
        var list = container.nestedUnkeyedContainer(forKey: .list)
        var points = container.nestedUnkeyedContainer(forKey: .points)
        try container.encode(x, forKey: .x)
        var pointElements = points.nestedUnkeyedContainer()
        for value in self.list { try list.encode(value) }
        try nested.encode(inner, forKey: .inner)
        for value in point { try pointElements.encode(value) }
        try points.encodeNil()
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        x = try container.decode(Int.self, forKey: .x)
        var points = try container.nestedUnkeyedContainer(forKey: .points)
        var pointElements = try points.nestedUnkeyedContainer()
        var point: [Double] = []
        while !pointElements.isAtEnd { point.append(try pointElements.decode(Double.self)) }
        self.point = point
        guard try points.decodeNil(), points.isAtEnd else { throw InvariantViolated(message: "points") }
        inner = try container.nestedContainer(keyedBy: InnerKeys.self, forKey: .nested).decode(
            String.self, forKey: .inner)
        var list = try container.nestedUnkeyedContainer(forKey: .list)
        var values: [Int16] = []
        while !list.isAtEnd { values.append(try list.decode(Int16.self)) }
        self.list = values
    }
}

private struct Empty: Codable, Equatable {}

/// Decodes an optional of its own type through a single value container: a recursion that
/// the data does not bound, which the decoder must cut off.
private final class Chain: Codable {
    let next: Chain?
    init(next: Chain?) { self.next = next }
    init(from decoder: any Decoder) throws { next = try decoder.singleValueContainer().decode(Chain?.self) }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(next)
    }
}

/// Throws from `encode(to:)` after writing part of itself.
private struct FailsHalfway: Encodable {
    struct Boom: Error {}
    enum K: CodingKey { case a, b, c }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: K.self)
        try container.encode("written", forKey: .a)
        var nested = container.nestedUnkeyedContainer(forKey: .b)
        try nested.encode(1)
        try container.encode([Shape.empty], forKey: .c)
        throw Boom()
    }
}

/// Nests the late-filled containers inside other containers.
private struct Outer: Codable, Equatable {
    var before: [LateNested]
    var inner: LateNested
    var shapes: [Shape]
    var after: String
}

private struct Misuse: Encodable {
    enum K: CodingKey { case a }
    func encode(to encoder: any Encoder) throws {
        var unkeyed = encoder.unkeyedContainer()
        try unkeyed.encode(1)
        var keyed = encoder.container(keyedBy: K.self)
        try keyed.encode(2, forKey: .a)
    }
}

private struct Small: Codable, Equatable {
    var x: Int
}

private struct Narrow: Codable, Equatable {
    var x: Int8
}

private struct WithOptionals: Codable, Equatable {
    var a: Int?
    var b: String?
    var c: [Int?]
    var d: Int??
    var e: Shape?
}

// MARK: - Tests

@Suite("Wire coding", .cpuBound)
struct WireCodingTests {
    // MARK: Scalars

    private func checkExtremes<T: FixedWidthInteger & Codable>(_: T.Type) throws {
        for value in [T.min, T.max, 0, 1, 127, T(truncatingIfNeeded: 128), T.max / 2, T.min / 2] {
            try roundTrip(value)
            try roundTrip(Wrapper(value))
        }
    }

    @Test("Every integer width at min, max and zero")
    func integers() throws {
        try checkExtremes(Int.self)
        try checkExtremes(Int8.self)
        try checkExtremes(Int16.self)
        try checkExtremes(Int32.self)
        try checkExtremes(Int64.self)
        try checkExtremes(UInt.self)
        try checkExtremes(UInt8.self)
        try checkExtremes(UInt16.self)
        try checkExtremes(UInt32.self)
        try checkExtremes(UInt64.self)
    }

    @Test("Int round trip", arguments: [Int.min, -129, -128, -1, 0, 1, 127, 128, 255, 65_536, Int.max])
    func int(value: Int) throws {
        try roundTrip(value)
    }

    @Test("Int encodings are compact for 0...127")
    func intLayout() throws {
        #expect(try encoded(0) == [0x80])
        #expect(try encoded(127) == [0xFF])
        #expect(try encoded(UInt8(5)) == [0x85])
        #expect(try encoded(128) == [WireTag.int] + le64(128))
        #expect(try encoded(-1) == [WireTag.int] + le64(UInt64.max))
        #expect(try encoded(UInt64.max) == [WireTag.uint] + le64(UInt64.max))
    }

    @Test("Bool")
    func bool() throws {
        try roundTrip(true)
        try roundTrip(false)
        #expect(try encoded(true) == [WireTag.true])
    }

    @Test(
        "Double",
        arguments: [
            0.0, -0.0, 1.5, -3.25e300, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .pi,
        ])
    func double(value: Double) throws {
        let back = try decoded(Double.self, try encoded(value))
        #expect(back.bitPattern == value.bitPattern)
    }

    @Test("Double and Float NaN keep their bit pattern")
    func nan() throws {
        let nan = Double(nan: 0x1234, signaling: false)
        #expect(try decoded(Double.self, try encoded(nan)).bitPattern == nan.bitPattern)
        let nanF = Float(nan: 0x12, signaling: false)
        #expect(try decoded(Float.self, try encoded(nanF)).bitPattern == nanF.bitPattern)
    }

    @Test(
        "Float",
        arguments: [Float(0), -0.0, 1.5, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude])
    func float(value: Float) throws {
        #expect(try decoded(Float.self, try encoded(value)).bitPattern == value.bitPattern)
        try roundTrip(Wrapper(value))
    }

    @Test("String", arguments: ["", "a", "hello, world", "héllo wörld", "日本語テキスト", "🎉👨‍👩‍👧‍👦🇨🇭", "nul\0inside"])
    func string(value: String) throws {
        try roundTrip(value)
        try roundTrip([value, value])
    }

    @Test("Long string")
    func longString() throws {
        try roundTrip(String(repeating: "abc€🎉", count: 50_000))
    }

    // MARK: Bytes and arrays

    @Test("[UInt8] empty, small and 4 MiB")
    func byteArrays() throws {
        try roundTrip([UInt8]())
        try roundTrip([UInt8](repeating: 7, count: 3))
        let big = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 0x9E37_79B1) >> 11) }
        let bytes = try encoded(big)
        #expect(bytes.count == 1 + 4 + (4 << 20))
        #expect(bytes[0] == WireTag.bytes)
        #expect(try decoded([UInt8].self, bytes) == big)
        // Readable element by element through other collection types too.
        #expect(try decoded(ContiguousArray<UInt8>.self, try encoded([UInt8](0...255))) == ContiguousArray(0...255))
        #expect(try decoded([Int].self, try encoded([UInt8](0...255))) == Array(0...255))
    }

    @Test("Typed numeric arrays")
    func typedArrays() throws {
        func check<E: FixedWidthInteger & Codable>(_: E.Type, kind: WireElementKind) throws {
            let values: [E] = [.min, .max, 0, 1, 100]
            try roundTrip(values)
            try roundTrip([E]())
            try roundTrip(Wrapper(values))
            let bytes = try encoded(values)
            #expect(Array(bytes.prefix(3)) == [WireTag.typedArray, kind.rawValue, 5])
            #expect(bytes.count == 3 + 5 * MemoryLayout<E>.size)
        }
        try check(Int.self, kind: .int64)
        try check(Int64.self, kind: .int64)
        try check(Int32.self, kind: .int32)
        try check(Int16.self, kind: .int16)
        try check(Int8.self, kind: .int8)
        try check(UInt.self, kind: .uint64)
        try check(UInt64.self, kind: .uint64)
        try check(UInt32.self, kind: .uint32)
        try check(UInt16.self, kind: .uint16)
        let doubles: [Double] = [0, -0.0, .infinity, .pi, -1e300]
        try roundTrip(doubles)
        let floats: [Float] = [0, -0.0, .infinity, .pi, -1e30]
        try roundTrip(floats)
        try roundTrip(Array(0..<100_000))
    }

    @Test("Typed arrays decode leniently through unkeyed containers")
    func typedArraysLenient() throws {
        let ints = try encoded([1, 2, 3, 300])
        #expect(try decoded([Int32].self, ints) == [1, 2, 3, 300])
        #expect(try decoded([Int?].self, ints) == [1, 2, 3, 300])
        #expect(try decoded(Set<Int>.self, ints) == [1, 2, 3, 300])
        #expect(try decoded(ContiguousArray<Int>.self, ints) == [1, 2, 3, 300])
        #expect(try decoded([Double].self, ints) == [1, 2, 3, 300])
        #expect(try decoded([Wrapper<Int>].self, ints) == [Wrapper(1), Wrapper(2), Wrapper(3), Wrapper(300)])
        #expect(throws: DecodingError.self) { try decoded([Int8].self, ints) }
        #expect(throws: DecodingError.self) { try decoded([String].self, ints) }
        #expect(throws: DecodingError.self) { try decoded([[Int]].self, ints) }
        // And a generic array decodes into the typed fast-path type.
        #expect(try decoded([Int].self, try encoded(ContiguousArray([5, 6, 700]))) == [5, 6, 700])
        #expect(try decoded([Float].self, try encoded([Double](arrayLiteral: 1.5, 2))) == [1.5, 2])
    }

    // MARK: Composite values

    @Test("Nested structs")
    func nestedStructs() throws {
        let friend = Person(
            name: "Bob", age: 40, height: 1.8, tags: [], address: Address(street: "B", zip: -1),
            scores: [], nickname: nil, friends: [], flags: []
        )
        let person = Person(
            name: "Alice", age: 33, height: 1.65, tags: ["x", "yz", "🎉"],
            address: Address(street: "Main St", zip: 12345),
            scores: [1, 2.5, -3], nickname: "Al", friends: [friend, friend], flags: [true, false]
        )
        try roundTrip(person)
        try roundTrip([person, friend])
        try roundTrip(Triple(id: 1, name: "t", values: [1, 2]))
        try roundTrip(Empty())
        try roundTrip([Empty(), Empty()])
    }

    @Test("Enums with associated values and raw values")
    func enums() throws {
        let shapes: [Shape] = [.circle(radius: 2), .rect(width: -1, height: 300), .labeled("x", -128), .empty]
        for shape in shapes { try roundTrip(shape) }
        try roundTrip(shapes)
        for color in Color.allCases { try roundTrip(color) }
        try roundTrip(Tree.node([.leaf(1), .node([.leaf(2), .leaf(3)]), .node([])]))
        try roundTrip(Tree.deep(100))
    }

    @Test("Optionals")
    func optionals() throws {
        try roundTrip(Int?.none)
        try roundTrip(Int?.some(5))
        try roundTrip(String?.some("s"))
        try roundTrip(Int??.none)
        try roundTrip(Int??.some(.some(7)))
        // Like JSONEncoder, `.some(nil)` collapses to `nil` (both encode as a nil tag).
        #expect(try decoded(Int??.self, try encoded(Int??.some(.none))) == .none)
        try roundTrip([1, nil, 3] as [Int?])
        try roundTrip(WithOptionals(a: nil, b: "b", c: [nil, 1], d: .some(.some(2)), e: .rect(width: 1, height: 2)))
        try roundTrip(WithOptionals(a: 1, b: nil, c: [], d: nil, e: nil))
        #expect(try encoded(Int?.none) == [WireTag.null])
    }

    @Test("Dictionaries")
    func dictionaries() throws {
        try roundTrip(["a": 1, "b": 2, "": 0, "🎉": -5, "42": 42, "042": 7])
        try roundTrip([1: "one", -2: "minus two", Int.max: "max", Int.min: "min"])
        try roundTrip(["outer": ["inner": [1, 2]]])
        try roundTrip([1.5: "x", 2.5: "y"] as [Double: String])
        try roundTrip([String: Int]())
        try roundTrip([Int: String]())
        let big = Dictionary(uniqueKeysWithValues: (0..<5_000).map { ("key\($0)", $0) })
        try roundTrip(big)
    }

    @Test("Class hierarchies: superEncoder and a shared encoder")
    func classes() throws {
        let dog = Dog(name: "Rex", breed: "Collie", owner: "Ann")
        let back = try decoded(Dog.self, try encoded(dog))
        #expect(back.name == "Rex" && back.legs == 4 && back.breed == "Collie" && back.owner == "Ann")
        let noOwner = try decoded(Dog.self, try encoded(Dog(name: "Stray", breed: "?", owner: nil)))
        #expect(noOwner.owner == nil && noOwner.name == "Stray")

        let cat = try decoded(Cat.self, try encoded(Cat(name: "Tom", lives: 9)))
        #expect(cat.name == "Tom" && cat.lives == 9 && cat.legs == 4)
    }

    @Test("Custom Codable: reverse-order keys, contains, allKeys, decodeIfPresent, decodeNil")
    func reversedKeys() throws {
        try roundTrip(Reversed(a: 1, b: "two", c: [3], d: 4, e: true))
        try roundTrip(Reversed(a: -1, b: "", c: [], d: nil, e: nil))
        try roundTrip([Reversed(a: 5, b: "x", c: [1, 2], d: nil, e: false)])
    }

    @Test("Nested containers filled after the parent moved on")
    func lateNested() throws {
        try roundTrip(LateNested(x: 9, list: [1, -2, 300], inner: "in", point: [1.5, -2]))
        try roundTrip(LateNested(x: 0, list: [], inner: "", point: []))
    }

    @Test("Containers with 128+ elements widen their count in place")
    func largeCounts() throws {
        let shapes = (0..<300).map { $0 % 2 == 0 ? Shape.rect(width: $0, height: -$0) : .labeled("s\($0)", 1) }
        try roundTrip(shapes)
        try roundTrip((0..<200).map { [$0, $0 + 1] })
        let late = LateNested(x: 1, list: (0..<200).map(Int16.init), inner: "i", point: (0..<150).map(Double.init))
        try roundTrip(late)
        let outer = Outer(before: Array(repeating: late, count: 130), inner: late, shapes: shapes, after: "end")
        try roundTrip(outer)
        try roundTrip([outer, outer])
        try roundTrip(Dictionary(uniqueKeysWithValues: (0..<20_000).map { ($0, "v\($0)") }))
        // A count needing a 3-byte varint, inside a map.
        try roundTrip(["big": (0..<20_000).map { Wrapper(String($0)) }])
    }

    @Test("Nested late-filled containers inside containers, after other values in the buffer")
    func nestedLateContainers() throws {
        let late = LateNested(x: -5, list: [1, 2], inner: "x", point: [0.5])
        let outer = Outer(before: [late, late], inner: late, shapes: [.empty, .circle(radius: 1)], after: "z")
        var writer = ByteWriter()
        try WireCoding.encode("prefix", into: &writer)
        try WireCoding.encode(outer, into: &writer)
        try WireCoding.encode(outer, into: &writer)
        var reader = ByteReader(writer.bytes)
        #expect(try WireCoding.decode(String.self, from: &reader) == "prefix")
        #expect(try WireCoding.decode(Outer.self, from: &reader) == outer)
        #expect(try WireCoding.decode(Outer.self, from: &reader) == outer)
        #expect(reader.isAtEnd)
    }

    @Test("A failing encode leaves the writer as it was")
    func failedEncodeRestoresWriter() throws {
        var writer = ByteWriter()
        try WireCoding.encode(42, into: &writer)
        let before = writer.bytes
        #expect(throws: FailsHalfway.Boom.self) { try WireCoding.encode(FailsHalfway(), into: &writer) }
        #expect(throws: FailsHalfway.Boom.self) { try WireCoding.encode(["k": [FailsHalfway()]], into: &writer) }
        #expect(throws: EncodingError.self) { try WireCoding.encode([Misuse()], into: &writer) }
        #expect(writer.bytes == before)
        try WireCoding.encode("after", into: &writer)
        var reader = ByteReader(writer.bytes)
        #expect(try WireCoding.decode(Int.self, from: &reader) == 42)
        #expect(try WireCoding.decode(String.self, from: &reader) == "after")
    }

    @Test("Recursion through single value containers is cut off, not a stack overflow")
    func singleValueRecursion() throws {
        // Like JSONEncoder, the chain collapses to a single nil (every level is a single value).
        #expect(try encoded(Chain(next: Chain(next: nil))) == [WireTag.null])
        #expect(try decoded(Chain.self, [WireTag.null]).next == nil)
        #expect(throws: DecodingError.self) { try decoded(Chain.self, try encoded(5)) }
        #expect(throws: DecodingError.self) { try decoded([Chain].self, try encoded(["x"])) }
    }

    @Test("Several values back to back in one buffer")
    func backToBack() throws {
        var writer = ByteWriter()
        try WireCoding.encode(42, into: &writer)
        try WireCoding.encode("str", into: &writer)
        try WireCoding.encode(Shape.rect(width: 1, height: 2), into: &writer)
        try WireCoding.encode([UInt8](repeating: 1, count: 10), into: &writer)
        try WireCoding.encode(Int?.none, into: &writer)
        try WireCoding.encode(["k": 1.5], into: &writer)
        try WireCoding.encode(-7, into: &writer)
        var reader = ByteReader(writer.bytes)
        #expect(try WireCoding.decode(Int.self, from: &reader) == 42)
        #expect(try WireCoding.decode(String.self, from: &reader) == "str")
        #expect(try WireCoding.decode(Shape.self, from: &reader) == .rect(width: 1, height: 2))
        #expect(try WireCoding.decode([UInt8].self, from: &reader) == [UInt8](repeating: 1, count: 10))
        #expect(try WireCoding.decode(Int?.self, from: &reader) == nil)
        #expect(try WireCoding.decode([String: Double].self, from: &reader) == ["k": 1.5])
        #expect(try WireCoding.decode(Int.self, from: &reader) == -7)
        #expect(reader.isAtEnd)
    }

    @Test("Skipping a value, then decoding the next")
    func skipping() throws {
        var writer = ByteWriter()
        let skipped: [any Encodable] = [
            1, 1000, UInt64.max, 1.5, Float(2), "skip me", [UInt8](repeating: 0, count: 100), [1, 2, 3], [Float(1)],
            Person(
                name: "P", age: 1, height: 1, tags: ["t"], address: Address(street: "s", zip: 1), scores: [1],
                nickname: nil, friends: [], flags: [true]),
            [String: Int](), Int?.none, true, Tree.deep(10), ["a": [1: "b"]],
        ]
        for (index, value) in skipped.enumerated() {
            try WireCoding.encode(value, into: &writer)
            try WireCoding.encode(index, into: &writer)
        }
        var reader = ByteReader(writer.bytes)
        for index in skipped.indices {
            try WireCoding.skipValue(in: &reader)
            #expect(try WireCoding.decode(Int.self, from: &reader) == index)
        }
        #expect(reader.isAtEnd)
    }

    // MARK: Fast path == slow path

    @Test("Fast paths are byte-identical to the Encoder paths")
    func fastEqualsSlow() throws {
        func same<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let fast = try encoded(value)
            let slow = try encoded(Wrapper(value))
            #expect(fast == slow, sourceLocation: sourceLocation)
            #expect(try decoded(Wrapper<T>.self, fast) == Wrapper(value), sourceLocation: sourceLocation)
            #expect(try decoded(T.self, slow) == value, sourceLocation: sourceLocation)
            // Inside a keyed and an unkeyed container, too.
            #expect(try encoded(["k": value]) == encoded(["k": Wrapper(value)]), sourceLocation: sourceLocation)
            let pair = try encoded(UnkeyedPair(value: value))
            #expect(
                pair.count % 2 == 0 && pair[..<6] == [WireTag.array, UInt8(pair.count - 5), 0, 0, 0, 2],
                sourceLocation: sourceLocation)
            #expect(
                pair[6..<(6 + pair.count / 2 - 3)] == pair[(6 + pair.count / 2 - 3)...], sourceLocation: sourceLocation)
        }
        for v in [0, 127, 128, -1, Int.min, Int.max] { try same(v) }
        try same(Int8.min)
        try same(Int16.max)
        try same(Int32.min)
        try same(Int64.max)
        try same(UInt.max)
        try same(UInt8.max)
        try same(UInt16(5))
        try same(UInt32.max)
        try same(UInt64(1) << 40)
        try same(true)
        try same(1.25)
        try same(Float(-2.5))
        try same("wrapped 🎉")
        try same([UInt8](0...9))
        try same([1, 2, 3])
        try same([Int64.min])
        try same([Int32.max])
        try same([Int16(1)])
        try same([Int8(-1)])
        try same([UInt.max])
        try same([UInt64(3)])
        try same([UInt32(3)])
        try same([UInt16(3)])
        try same([1.5, 2.5])
        try same([Float(1.5)])
        // Nested wrappers go through the single value container twice.
        #expect(try encoded(Wrapper(Wrapper(300))) == encoded(300))
        // A keyed struct has the documented layout.
        #expect(try encoded(Small(x: 5)) == [WireTag.map, 4, 0, 0, 0, 1, 1, UInt8(ascii: "x"), 0x85])
    }

    // MARK: Lenient decoding

    @Test("Integers decode across signedness and width when in range")
    func lenientIntegers() throws {
        #expect(try decoded(UInt8.self, try encoded(200)) == 200)
        #expect(try decoded(Int.self, try encoded(UInt64(1) << 62)) == 1 << 62)
        #expect(try decoded(Int64.self, try encoded(UInt32.max)) == Int64(UInt32.max))
        #expect(try decoded(Double.self, try encoded(1 << 53)) == 9_007_199_254_740_992)
        #expect(try decoded(Float.self, try encoded(3)) == 3)
        #expect(try decoded(Double.self, try encoded(Float(0.5))) == 0.5)
        #expect(try decoded(Float.self, try encoded(0.5)) == 0.5)
        #expect(throws: DecodingError.self) { try decoded(Double.self, try encoded((1 << 53) + 1)) }
        #expect(throws: DecodingError.self) { try decoded(Float.self, try encoded(1e300)) }
        #expect(throws: DecodingError.self) { try decoded(Int.self, try encoded(UInt64.max)) }
        #expect(throws: DecodingError.self) { try decoded(UInt.self, try encoded(-1)) }
        #expect(throws: DecodingError.self) { try decoded(Int.self, try encoded(1.0)) }
        #expect(try decoded(Narrow.self, try encoded(Small(x: -128))) == Narrow(x: -128))
    }

    // MARK: Errors

    @Test("Type mismatches report a typeMismatch with the coding path")
    func typeMismatch() throws {
        do {
            _ = try decoded(Int.self, try encoded("not a number"))
            Issue.record("expected an error")
        } catch DecodingError.typeMismatch(let type, _) {
            #expect(ObjectIdentifier(type) == ObjectIdentifier(Int.self))
        }
        do {
            _ = try decoded(Person.self, try encoded(["name": "x", "age": "old"]))
            Issue.record("expected an error")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["age"])
        }
        do {
            _ = try decoded([Small].self, try encoded([Small(x: 1), Small(x: 2)].map { ["x": "\($0.x)"] }))
            Issue.record("expected an error")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["Index 0", "x"])
        }
        #expect(throws: DecodingError.self) { try decoded(String.self, try encoded(1)) }
        #expect(throws: DecodingError.self) { try decoded(Bool.self, try encoded(1)) }
        #expect(throws: DecodingError.self) { try decoded([String: Int].self, try encoded([1, 2])) }
        #expect(throws: DecodingError.self) { try decoded([Int].self, try encoded(["a": 1])) }
        #expect(throws: DecodingError.self) { try decoded([Int: String].self, try encoded(["a": "x"])) }
    }

    @Test("Out of range and missing values")
    func rangeAndMissing() throws {
        do {
            _ = try decoded(Int8.self, try encoded(300))
            Issue.record("expected an error")
        } catch DecodingError.dataCorrupted {}
        do {
            _ = try decoded(Narrow.self, try encoded(Small(x: 300)))
            Issue.record("expected an error")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(context.codingPath.map(\.stringValue) == ["x"])
        }
        do {
            _ = try decoded(Int.self, try encoded(Int?.none))
            Issue.record("expected an error")
        } catch DecodingError.valueNotFound {}
        do {
            _ = try decoded(Small.self, try encoded(Empty()))
            Issue.record("expected an error")
        } catch DecodingError.keyNotFound(let key, _) {
            #expect(key.stringValue == "x")
        }
    }

    @Test("Encoder misuse throws instead of trapping")
    func encoderMisuse() throws {
        #expect(throws: EncodingError.self) { try encoded(Misuse()) }
    }

    @Test("Invalid UTF-8 throws")
    func invalidUTF8() throws {
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            let bytes = [WireTag.string] + varint(UInt64(bad.count)) + bad
            #expect(throws: DecodingError.self) { try decoded(String.self, bytes) }
            var reader = ByteReader(Array(bytes.dropFirst()))
            #expect(throws: WireFormatError.self) { try reader.readString() }
        }
    }

    @Test("Every truncated prefix throws")
    func truncation() throws {
        let person = Person(
            name: "Alice", age: 300, height: 1.5, tags: ["a", "b"], address: Address(street: "s", zip: 9),
            scores: [1, 2], nickname: "n", friends: [], flags: [true]
        )
        func check<T: Codable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let bytes = try encoded(value)
            for length in 0..<bytes.count {
                var reader = ByteReader(Array(bytes.prefix(length)))
                #expect(throws: (any Error).self, sourceLocation: sourceLocation) {
                    try WireCoding.decode(T.self, from: &reader)
                }
                var skipper = ByteReader(Array(bytes.prefix(length)))
                #expect(throws: (any Error).self, sourceLocation: sourceLocation) {
                    try WireCoding.skipValue(in: &skipper)
                }
                // Truncation inside a larger buffer is caught by the container lengths.
                var inner = ByteReader(Array(bytes.prefix(length)) + [UInt8](repeating: 0, count: 4))
                _ = try? WireCoding.decode(T.self, from: &inner)
            }
        }
        try check(person)
        try check(Shape.rect(width: 1000, height: -1))
        try check(["a": 1, "b": 2])
        try check([1: "x"])
        try check([1, 2, 3])
        try check("héllo")
        try check(300)
        try check(UInt64.max)
        try check(1.5)
        try check([UInt8](repeating: 9, count: 20))
        try check(Tree.deep(5))
        try check(Reversed(a: 1, b: "b", c: [1], d: 2, e: nil))
        try check([Int?.none, 2])
    }

    @Test("Huge declared lengths are rejected without allocating")
    func hugeLengths() throws {
        let huge = varint(UInt64.max >> 1)
        let inputs: [[UInt8]] = [
            [WireTag.string] + huge,
            [WireTag.bytes] + huge,
            [WireTag.typedArray, WireElementKind.int64.rawValue] + varint(1 << 61),
            [WireTag.typedArray, WireElementKind.int64.rawValue] + varint(UInt64.max),
            [WireTag.typedArray, 0xEE, 1, 0],
            [WireTag.array, 0xFF, 0xFF, 0xFF, 0xFF],
            [WireTag.array, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
            [WireTag.array, 11, 0, 0, 0] + varint(1 << 40),
            [WireTag.map, 11, 0, 0, 0] + varint(1 << 40),
            [WireTag.map, 2, 0, 0, 0, 1, 0x7F],
            [WireTag.array, 0, 0, 0, 0],
            [0x0C], [0x7F],
            [WireTag.string, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            [WireTag.string, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02],
        ]
        for input in inputs {
            #expect(throws: (any Error).self) { try decoded(String.self, input) }
            #expect(throws: (any Error).self) { try decoded([UInt8].self, input) }
            #expect(throws: (any Error).self) { try decoded([Int].self, input) }
            #expect(throws: (any Error).self) { try decoded([String].self, input) }
            #expect(throws: (any Error).self) { try decoded([Double: Int].self, input) }
            #expect(throws: (any Error).self) { try decoded([String: Int].self, input) }
            #expect(throws: (any Error).self) { try decoded(Person.self, input) }
        }
    }

    @Test("Varints: boundaries round trip, overlong and overflowing ones throw")
    func varints() throws {
        for value: UInt64 in [0, 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max >> 1, UInt64.max] {
            var reader = ByteReader(varint(value))
            #expect(try reader.readVarint() == value)
            #expect(reader.isAtEnd)
        }
        #expect(varint(UInt64.max).count == 10)
        var overflow = ByteReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02])
        #expect(throws: WireFormatError.self) { try overflow.readVarint() }
        var tooLong = ByteReader([UInt8](repeating: 0x80, count: 11) + [0])
        #expect(throws: WireFormatError.self) { try tooLong.readVarint() }
        var truncated = ByteReader([0x80])
        #expect(throws: WireFormatError.self) { try truncated.readVarint() }
    }

    @Test("ByteWriter and ByteReader primitives")
    func primitives() throws {
        var writer = ByteWriter(reservingCapacity: 0)
        writer.writeUInt8(1)
        let slot = writer.reserveUInt32()
        writer.writeUInt64(0x0102_0304_0506_0708)
        writer.writeInt64(-2)
        writer.writeString("hé")
        writer.writeBytes([9, 9] as [UInt8])
        [UInt8](arrayLiteral: 5, 6).withUnsafeBytes { writer.writeRaw($0) }
        writer.patchUInt32(0xAABB_CCDD, at: slot)
        #expect(writer.count == 1 + 4 + 8 + 8 + 4 + 4)
        #expect(Array(writer.bytes[1..<5]) == [0xDD, 0xCC, 0xBB, 0xAA])

        var reader = ByteReader(writer.bytes)
        #expect(try reader.readUInt8() == 1)
        #expect(try reader.readUInt32() == 0xAABB_CCDD)
        #expect(try reader.readUInt64() == 0x0102_0304_0506_0708)
        #expect(try reader.readInt64() == -2)
        #expect(try reader.readString() == "hé")
        #expect(try reader.readBytes(2) == [9, 9])
        #expect(reader.remaining == 2)
        #expect(throws: WireFormatError.self) { try reader.readUInt32() }
        #expect(throws: WireFormatError.self) { try reader.readBytes(3) }
        #expect(throws: WireFormatError.self) { try reader.skip(-1) }
        try reader.skip(2)
        #expect(reader.isAtEnd)
        #expect(throws: WireFormatError.self) { try reader.readUInt8() }

        // A sub-range reader stops at `end`; bad ranges are clamped rather than trapping.
        var sub = ByteReader([1, 2, 3, 4], offset: 1, end: 3)
        #expect(try sub.readUInt8() == 2)
        #expect(sub.offset == 2 && sub.remaining == 1)
        let clamped = ByteReader([1, 2], offset: 5, end: 10)
        #expect(clamped.isAtEnd && clamped.offset == 2)
    }

    @Test("Nesting deeper than the limit throws instead of overflowing the stack")
    func nestingLimit() throws {
        // Each Tree level is three containers (case map, payload map, array).
        try roundTrip(Tree.deep(WireLimits.maxDepth / 3 - 2))
        #expect(throws: DecodingError.self) {
            try decoded(Tree.self, try encoded(Tree.deep(WireLimits.maxDepth / 3 + 2)))
        }
        // Hand-built arrays nested far too deep for any limit.
        var bytes: [UInt8] = [WireTag.array, 1, 0, 0, 0, 0]
        for _ in 0..<5_000 {
            var writer = ByteWriter()
            writer.writeUInt8(WireTag.array)
            writer.writeUInt32(UInt32(bytes.count + 1))
            writer.writeVarint(1)
            writer.writeBytes(bytes)
            bytes = writer.bytes
        }
        #expect(throws: DecodingError.self) { try decoded(Tree.self, bytes) }
        #expect(throws: DecodingError.self) { try decoded([[[[[[Int]]]]]].self, bytes) }
        var reader = ByteReader(bytes)
        try WireCoding.skipValue(in: &reader)
        #expect(reader.isAtEnd)
    }

    // MARK: Fuzzing

    /// Decodes `bytes` as many types; each attempt must return or throw.
    private func decodeAsEverything(_ bytes: [UInt8]) {
        func attempt<T: Decodable>(_: T.Type) {
            var reader = ByteReader(bytes)
            _ = try? WireCoding.decode(T.self, from: &reader)
        }
        attempt(Int.self)
        attempt(Int8.self)
        attempt(UInt64.self)
        attempt(Double.self)
        attempt(Float.self)
        attempt(Bool.self)
        attempt(String.self)
        attempt([UInt8].self)
        attempt([Int].self)
        attempt([Float].self)
        attempt([Int?].self)
        attempt([String].self)
        attempt(Int??.self)
        attempt([String: Int].self)
        attempt([Int: String].self)
        attempt([Double: Int].self)
        attempt(Person.self)
        attempt(Shape.self)
        attempt(Tree.self)
        attempt(Reversed.self)
        attempt(LateNested.self)
        attempt(WithOptionals.self)
        attempt(Dog.self)
        attempt(Outer.self)
        var skipper = ByteReader(bytes)
        while (try? WireCoding.skipValue(in: &skipper)) != nil, !skipper.isAtEnd {}
    }

    @Test("Fuzz: 20,000 random byte strings never crash or hang")
    func fuzzRandom() {
        var rng = SeededGenerator(state: 0x5EED)
        let tags: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x80, 0xFF]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...48, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            // Bias half of the inputs towards valid tags so the decoder gets deeper.
            if !bytes.isEmpty && Bool.random(using: &rng) { bytes[0] = tags.randomElement(using: &rng)! }
            decodeAsEverything(bytes)
        }
    }

    @Test("Fuzz: random mutations of valid encodings never crash or hang")
    func fuzzMutations() throws {
        let person = Person(
            name: "Alice", age: 300, height: 1.5, tags: ["a", "bc"], address: Address(street: "s", zip: 9),
            scores: [1, 2], nickname: nil, friends: [], flags: [true, false]
        )
        let seeds: [[UInt8]] = [
            try encoded(person),
            try encoded(Shape.labeled("x", 3)),
            try encoded(Tree.node([.leaf(1), .node([.leaf(2)])])),
            try encoded(["a": 1, "bb": 300]),
            try encoded([7: "seven", -1: "minus"]),
            try encoded(Reversed(a: 1, b: "b", c: [1, 2], d: 4, e: true)),
            try encoded(LateNested(x: 1, list: [1, 2], inner: "i", point: [1])),
            try encoded(WithOptionals(a: 1, b: "b", c: [1, nil], d: .some(.some(1)), e: .empty)),
            try encoded(Dog(name: "d", breed: "b", owner: "o")),
            try encoded([1.5: 2] as [Double: Int]),
            try encoded([Int?.none, 1, 2]),
        ]
        var rng = SeededGenerator(state: 0xC0FFEE)
        for _ in 0..<1_000 {
            for seed in seeds {
                var bytes = seed
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let index = Int.random(in: 0..<bytes.count, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: bytes[index] = UInt8.random(in: .min ... .max, using: &rng)
                    case 1: bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                    case 2: bytes.insert(UInt8.random(in: .min ... .max, using: &rng), at: index)
                    default: if bytes.count > 1 { bytes.remove(at: index) }
                    }
                }
                decodeAsEverything(bytes)
            }
        }
    }

    // MARK: Unsupported values

    @Test("Values the format cannot carry throw EncodingError")
    func unsupported() throws {
        #expect(throws: EncodingError.self) { try encoded(Int128(1)) }
        #expect(throws: EncodingError.self) { try encoded(["k": UInt128(1)]) }
    }
}
