import Dispatch
import HTTPClient
import Locking

/// A page in one format: its bytes, and the same bytes gzip-compressed (nil if compression failed).
public struct EncodedPage: Sendable {
    public var plain: [UInt8]
    public var gzip: [UInt8]?

    public init(plain: [UInt8], gzip: [UInt8]?) {
        self.plain = plain
        self.gzip = gzip
    }
}

/// A value made on first use, once: callers that ask while it is being made wait for it instead
/// of making it again. The lock is held only to read or change the state, never while the value
/// is made.
public final class RenderedOnce<Value: Sendable>: Sendable {
    private enum Phase {
        case pending
        case making(DispatchGroup)
        case made(Value)
    }

    private enum Step {
        case use(Value)
        case wait(DispatchGroup)
        case make(DispatchGroup)
    }

    private let phase = LockedValue(Phase.pending)
    private let make: @Sendable () -> Value

    public init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
    }

    /// Whether the value has been made.
    public var isMade: Bool {
        phase.withLock { if case .made = $0 { return true } else { return false } }
    }

    /// The value, made now by the first caller.
    public var value: Value {
        let step: Step = phase.withLock { phase in
            switch phase {
            case .made(let value): return .use(value)
            case .making(let group): return .wait(group)
            case .pending:
                let group = DispatchGroup()
                group.enter()
                phase = .making(group)
                return .make(group)
            }
        }
        switch step {
        case .use(let value):
            return value
        case .wait(let group):
            group.wait()
            return self.value
        case .make(let group):
            let value = make()
            phase.withLock { $0 = .made(value) }
            group.leave()
            return value
        }
    }
}
