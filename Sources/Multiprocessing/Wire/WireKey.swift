// WireKey.swift
//
// The coding keys the wire coder makes up itself, for array indices and `super`.

/// The coding key the wire coder makes up: array indices and `super`.
struct WireKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }

    init(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }

    init(index: Int) {
        self.stringValue = "Index \(index)"
        self.intValue = index
    }

    static let `super` = WireKey(stringValue: "super")
}
