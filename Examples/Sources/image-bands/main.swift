// image-bands: image-like data processing with `starmap`: a synthetic grayscale image is cut into
// bands of rows, each band is blurred in a worker process (with its neighbouring rows as context),
// and the bands are put back together in order.
//
//     swift run -c release --package-path Examples image-bands [width] [height]

import Multiprocessing

/// Blurs `rows` (a band of an image `width` pixels wide, with one row of context above and below
/// when present) with a 3×3 box filter; returns the band without its context rows.
let blurBand = PoolFunction("blurBand") { (pixels: [UInt8], width: Int, contextAbove: Bool, contextBelow: Bool) in
    let height = pixels.count / width
    let first = contextAbove ? 1 : 0
    let last = contextBelow ? height - 1 : height
    var out = [UInt8](repeating: 0, count: (last - first) * width)
    for y in first..<last {
        for x in 0..<width {
            var sum = 0
            var n = 0
            for dy in -1...1 {
                for dx in -1...1 {
                    let yy = y + dy
                    let xx = x + dx
                    if yy >= 0 && yy < height && xx >= 0 && xx < width {
                        sum += Int(pixels[yy * width + xx])
                        n += 1
                    }
                }
            }
            out[(y - first) * width + x] = UInt8(sum / n)
        }
    }
    return out
}

Pool.bootstrap(serving: [blurBand])

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let width = arguments.first ?? 1024
let height = arguments.dropFirst().first ?? 1024
// A test pattern: diagonal stripes.
let image = (0..<(width * height)).map { i in UInt8(((i % width) + (i / width)) % 64 * 4) }

let pool = try Pool()
let bandRows = max(1, height / (pool.processes * 4))
var bands: [([UInt8], Int, Bool, Bool)] = []
for top in stride(from: 0, to: height, by: bandRows) {
    let bottom = min(top + bandRows, height)
    let from = max(top - 1, 0)
    let to = min(bottom + 1, height)
    bands.append((Array(image[(from * width)..<(to * width)]), width, top > 0, bottom < height))
}

let clock = ContinuousClock()
var blurred: [UInt8] = []
let elapsed = try await clock.measure {
    blurred = try await pool.starmap(blurBand, bands).flatMap { $0 }
}
pool.close()
try pool.join()

precondition(blurred.count == image.count)
let mean = blurred.reduce(0) { $0 + Int($1) } / blurred.count
print("Blurred a \(width)×\(height) image in \(bands.count) bands on \(pool.processes) processes in \(elapsed).")
print("Mean brightness \(mean); first row starts \(blurred.prefix(8).map(String.init).joined(separator: " ")).")
