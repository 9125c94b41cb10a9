// Durations as people write them: "0.16 s", "2.4 ms", "35 µs", "1 min 3 s", not
// "0.159884359 seconds".

extension Duration {
    /// Two significant digits in the largest unit that keeps the number at 1 or more (0.1 for
    /// seconds, as people say "0.16 s"); minutes and seconds from a minute on, hours and minutes
    /// from an hour on.
    var forPeople: String {
        let (seconds, attoseconds) = components
        let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        guard nanoseconds >= 1 else { return "0 s" }
        let wholeSeconds = Int((nanoseconds / 1e9).rounded())
        if wholeSeconds >= 3600 {
            let minutes = Int((nanoseconds / 60e9).rounded())
            return "\(minutes / 60) h" + (minutes % 60 == 0 ? "" : " \(minutes % 60) min")
        }
        if wholeSeconds >= 60 {
            return "\(wholeSeconds / 60) min" + (wholeSeconds % 60 == 0 ? "" : " \(wholeSeconds % 60) s")
        }
        // Rounded to two significant digits first, so that 999.7 µs reads "1 ms", not "1000 µs".
        var step = 1.0
        while nanoseconds / step >= 100 { step *= 10 }
        let rounded = (nanoseconds / step).rounded() * step
        let (scale, unit) =
            rounded >= 1e8 ? (1e9, "s") : rounded >= 1e6 ? (1e6, "ms") : rounded >= 1e3 ? (1e3, "µs") : (1, "ns")
        return "\(decimal(rounded / scale)) \(unit)"
    }
}

/// `value` (two significant digits) without trailing zeros: 16, 2.4, 0.16, 1.
private func decimal(_ value: Double) -> String {
    let digits = value >= 10 ? 0 : value >= 1 ? 1 : 2
    var scale = 1
    for _ in 0..<digits { scale *= 10 }
    let units = Int((value * Double(scale)).rounded())
    var text = "\(units / scale)"
    var fraction = units % scale
    var width = digits
    while width > 0 && fraction % 10 == 0 {
        fraction /= 10
        width -= 1
    }
    if width > 0 {
        let padded = String(fraction)
        text += "." + String(repeating: "0", count: width - padded.count) + padded
    }
    return text
}
