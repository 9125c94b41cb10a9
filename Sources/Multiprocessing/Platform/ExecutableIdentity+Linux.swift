// Whether a path names the program this process runs: a pool whose workers run this program
// again gives them its command-line arguments (see `Pool.Configuration.arguments`).

#if os(Linux)
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// Whether `path` is the executable file this process runs (the same file, however it is
    /// named: a relative path, a symbolic or hard link). False when `path` cannot be read.
    func isCurrentExecutable(_ path: String) -> Bool {
        var given = stat()
        var current = stat()
        guard stat(path, &given) == 0, stat("/proc/self/exe", &current) == 0 else { return false }
        return given.st_dev == current.st_dev && given.st_ino == current.st_ino
    }
#else
    #error("swift-multiprocessing's platform layer supports Linux only: add ExecutableIdentity+<System>.swift")
#endif
