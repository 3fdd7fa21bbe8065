// Shared by every fuzz target: each Fuzz/<Name>/build.sh compiles this file into its binary.

/// A failed check. Unlike `precondition`, whose message -O drops, the message reaches the log.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError(message()) }
}
