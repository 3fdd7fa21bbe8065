#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A non-recursive lock over a pthread mutex (what `NSLock` wraps), without Foundation;
/// ThreadSanitizer understands it.
final class MutexLock: @unchecked Sendable {
    // Safety: the mutex is only used through pthread calls, which synchronize it themselves.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Waits for the lock and takes it.
    func lock() {
        pthread_mutex_lock(mutex)
    }

    /// Releases the lock taken by ``lock()`` on the same thread.
    func unlock() {
        pthread_mutex_unlock(mutex)
    }
}
