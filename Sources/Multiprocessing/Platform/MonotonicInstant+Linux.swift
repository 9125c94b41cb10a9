// The pool's clock: CLOCK_MONOTONIC in nanoseconds.

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// An instant of the monotonic clock, in nanoseconds.
    ///
    /// The scheduler and the I/O thread keep a few instants per worker and compare them on every
    /// event. `MonotonicInstant` is a resilient type of the standard library: outside it, each
    /// copy of an optional instant is a call through its value witnesses (measured with callgrind:
    /// thousands of instructions per `apply`). This one is a plain integer.
    struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
        /// Nanoseconds since an arbitrary start (the machine's boot).
        let nanoseconds: Int64

        init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

        static var now: MonotonicInstant {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return MonotonicInstant(nanoseconds: Int64(time.tv_sec) &* 1_000_000_000 &+ Int64(time.tv_nsec))
        }

        /// This instant moved by `duration` (saturating: a timeout of centuries is "never").
        func advanced(by duration: Duration) -> MonotonicInstant {
            let (seconds, attoseconds) = duration.components
            let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            if overflow { return MonotonicInstant(nanoseconds: seconds < 0 ? .min : .max) }
            let delta = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
            if delta.overflow { return MonotonicInstant(nanoseconds: seconds < 0 ? .min : .max) }
            return advanced(byNanoseconds: delta.partialValue)
        }

        /// This instant moved by `nanoseconds` (saturating), without `Duration`'s 128-bit
        /// arithmetic: for the spins that bound themselves on every call.
        func advanced(byNanoseconds delta: Int64) -> MonotonicInstant {
            let (sum, overflowed) = nanoseconds.addingReportingOverflow(delta)
            if overflowed { return MonotonicInstant(nanoseconds: delta < 0 ? .min : .max) }
            return MonotonicInstant(nanoseconds: sum)
        }

        /// The time from this instant to `other` (negative when `other` is earlier).
        func duration(to other: MonotonicInstant) -> Duration {
            let (difference, overflow) = other.nanoseconds.subtractingReportingOverflow(nanoseconds)
            if overflow { return other.nanoseconds < nanoseconds ? .nanoseconds(Int64.min) : .nanoseconds(Int64.max) }
            return .nanoseconds(difference)
        }

        static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

        static func + (instant: MonotonicInstant, duration: Duration) -> MonotonicInstant {
            instant.advanced(by: duration)
        }

        var description: String { "\(nanoseconds) ns" }
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add MonotonicInstant+<System>.swift")
#endif
