#if canImport(Glibc)
import Glibc
#endif

/// The terminal the command line writes to.
public enum Terminal {
    /// Columns of standard output's terminal (80 when it is not one or does not say).
    public static func columns() -> Int {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    /// Whether standard output is a terminal.
    public static var isTerminal: Bool { isatty(1) == 1 }

    /// On Ctrl-C or SIGTERM: show the cursor again, end the line, exit 0 (for `overview --watch`).
    public static func restoreCursorAndExitOnInterrupt() {
        for number in [SIGINT, SIGTERM] {
            signal(number) { _ in
                _ = write(1, "\u{1B}[?25h\n", 7)
                _exit(0)
            }
        }
    }

    /// Writes out what standard output buffered.
    public static func flush() { fflush(nil) }
}
