import Foundation

/// A value guarded by an `NSLock`: the one lock idiom of this module.
///
/// `NSLock` rather than `Synchronization.Mutex`: on Linux, `Mutex` hands a contended lock over
/// with a priority-inheriting futex inside the (uninstrumented) standard library, which
/// ThreadSanitizer cannot see, whereas `NSLock` is a `pthread_mutex_t` that it intercepts
/// (scripts/sanitize runs the server's thread pool under ThreadSanitizer).
final class LockedValue<Value>: @unchecked Sendable {
    // Safety: `value` is only read and written under `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
