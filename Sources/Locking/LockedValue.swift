#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a pthread mutex: the one lock idiom of the exporter.
///
/// A pthread mutex rather than `Synchronization.Mutex` or `NSLock`: on Linux, `Mutex` hands a
/// contended lock over with a futex inside the (uninstrumented) standard library, which
/// ThreadSanitizer cannot see (scripts/sanitize runs the server's thread pool under it), and
/// `NSLock` would pull in Foundation. Hold it only for short bookkeeping, never around I/O or
/// rendering.
public final class LockedValue<Value>: @unchecked Sendable {
    // Safety: `value` is only read and written while `mutex` is held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    /// Creates a lock holding `value`.
    public init(_ value: Value) {
        self.value = value
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
