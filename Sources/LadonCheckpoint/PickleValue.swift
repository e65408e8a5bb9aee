// The values the restricted unpickler produces, and the torch storage/tensor references inside them.
import LadonCore

/// Element types of torch storages that a checkpoint may hold.
package enum TorchDType: String, Sendable, CaseIterable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

    /// Bytes per element.
    package var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// Whether the type is a floating-point type.
    package var isFloatingPoint: Bool { [.float32, .float16, .bfloat16, .float64].contains(self) }

    /// The storage class name torch pickles for this type (`FloatStorage`, ...).
    package var storageClassName: String {
        switch self {
        case .float32: return "FloatStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .float64: return "DoubleStorage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        }
    }

    /// Maps a pickled storage class or dtype global (`torch.FloatStorage`, `torch.cuda.HalfStorage`,
    /// `torch.float32`, `torch.UntypedStorage`) to a dtype; nil if unknown.
    package init?(global module: String, name: String) {
        guard module == "torch" || module == "torch.cuda" || module == "torch.storage" else { return nil }
        if name == "UntypedStorage" || name == "_UntypedStorage" || name == "uint8" {
            self = .uint8
            return
        }
        if let t = TorchDType.allCases.first(where: { $0.storageClassName == name || $0.rawValue == name }) {
            self = t
            return
        }
        switch name {
        case "float", "float32": self = .float32
        case "half": self = .float16
        case "double": self = .float64
        case "long": self = .int64
        case "int": self = .int32
        case "short": self = .int16
        default: return nil
        }
    }
}

/// A torch storage referenced by a checkpoint's pickle (a record `<archive>/data/<key>` in the zip).
package struct TorchStorageRef: Sendable, Equatable, Hashable {
    /// The record key (the file name under `data/`).
    package let key: String
    package let dtype: TorchDType
    /// Number of elements the storage holds.
    package let elementCount: Int
    /// Device the storage was saved from (`cpu`, `cuda:0`); informational.
    package let location: String

    package init(key: String, dtype: TorchDType, elementCount: Int, location: String) {
        self.key = key
        self.dtype = dtype
        self.elementCount = elementCount
        self.location = location
    }
}

/// A strided view of a storage, as `torch._utils._rebuild_tensor_v2` describes it.
package struct TorchTensorRef: Sendable, Equatable {
    package let storage: TorchStorageRef
    /// Offset of element [0, 0, ...] in the storage, in elements.
    package let storageOffset: Int
    package let shape: [Int]
    /// Element strides per dimension.
    package let strides: [Int]

    package var dtype: TorchDType { storage.dtype }
    package var elementCount: Int { shape.reduce(1, *) }

    /// Whether the view is row-major contiguous. An empty view is contiguous; a product that overflows (only
    /// possible for empty views, which validation lets through with any sizes) is not.
    package var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() {
            if size != 1 && stride != expected { return elementCount == 0 }
            let (next, overflow) = expected.multipliedReportingOverflow(by: size)
            if overflow { return elementCount == 0 }
            expected = next
        }
        return true
    }

    /// Most elements one tensor view may address (2^28: 1 GiB as `Float32`; the largest Ladon tensor, ResNeSt-269e's
    /// included, has under 2^24). Views are materialised whole, so this bounds what any read allocates.
    package static let maxElements = 1 << 28
    /// Most dimensions a view may have (torch's own limit is 64).
    package static let maxRank = 64
    /// A view may address more elements than its storage holds only through repeated (stride-0) elements, and
    /// then by at most this many: broadcast buffers are small, while a 4 KB file claiming 2.6e13 elements over
    /// one stored element is an attack on the reader's memory.
    package static let maxBroadcastElements = 1 << 20

    /// Validates the view against its storage: non-negative sizes/strides, no overflow, every addressed
    /// element inside the storage.
    package init(storage: TorchStorageRef, storageOffset: Int, shape: [Int], strides: [Int]) throws(LadonError) {
        guard shape.count == strides.count else {
            throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "size \(shape) but stride \(strides) of another rank"))
        }
        guard shape.count <= Self.maxRank else {
            throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "\(shape.count) dimensions, more than the \(Self.maxRank) allowed"))
        }
        guard storageOffset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "a negative offset, size or stride (offset \(storageOffset), size \(shape), stride \(strides))"))
        }
        var count = 1
        var last = storageOffset
        for (size, stride) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: size)
            guard !o1 else { throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "size \(shape) overflows")) }
            count = c
            if size > 0 {
                let (step, o2) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, o3) = last.addingReportingOverflow(step)
                guard !o2, !o3 else { throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "size \(shape) stride \(strides) overflows")) }
                last = sum
            }
        }
        if count > 0 && last >= storage.elementCount {
            throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "size \(shape), stride \(strides), offset \(storageOffset) reaches element \(last), but the storage holds \(storage.elementCount) elements"))
        }
        guard count <= Self.maxElements else {
            throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "size \(shape) has \(count) elements, more than the \(Self.maxElements) a view may have"))
        }
        guard count <= storage.elementCount + Self.maxBroadcastElements else {
            throw .checkpoint(file: nil, .invalidTensorView(storage: storage.key, detail: "size \(shape), stride \(strides) claims \(count) elements over \(storage.elementCount); a view may repeat (stride 0) at most \(Self.maxBroadcastElements) elements beyond its storage"))
        }
        self.storage = storage
        self.storageOffset = storageOffset
        self.shape = shape
        self.strides = strides
    }
}

/// One key/value pair of a pickled dict (order preserved).
package struct PickleDictItem: Sendable, Equatable {
    package let key: PickleValue
    package let value: PickleValue
    package init(key: PickleValue, value: PickleValue) { self.key = key; self.value = value }
}

/// An instance of a class the unpickler does not know (e.g. `argparse.Namespace`). It is recorded, never
/// constructed: no code from the pickle ever runs.
package struct PickleObject: Sendable, Equatable {
    /// `module.name` of the class or callable.
    package let className: String
    /// Constructor / reduce arguments.
    package let args: [PickleValue]
    /// The state passed to BUILD (usually a dict of attributes), if any.
    package let state: PickleValue?
}

/// A value decoded from a pickle stream by ``PickleMachine``.
package indirect enum PickleValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits: little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list([PickleValue])
    case set([PickleValue])
    /// A dict or `collections.OrderedDict`, in insertion order.
    case dict([PickleDictItem])
    /// A reference to a module-level name that was not called (a class or function).
    case global(module: String, name: String)
    case object(PickleObject)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)

    /// The value for a string key if this is a dict.
    package subscript(key: String) -> PickleValue? {
        guard case .dict(let items) = self else { return nil }
        return items.last(where: { $0.key == .string(key) })?.value
    }

    /// The items if this is a dict.
    package var dictItems: [PickleDictItem]? {
        if case .dict(let items) = self { return items }
        return nil
    }

    /// The integer if this is an int (or a bool).
    package var intValue: Int? {
        switch self {
        case .int(let v): return v
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The string if this is a str.
    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The elements if this is a tuple or a list.
    package var elements: [PickleValue]? {
        switch self {
        case .tuple(let v), .list(let v): return v
        default: return nil
        }
    }

    /// A short name of the value's kind, for messages.
    package var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .set: return "set"
        case .dict: return "dict"
        case .global(let m, let n): return "global \(m).\(n)"
        case .object(let o): return "object \(o.className)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}
