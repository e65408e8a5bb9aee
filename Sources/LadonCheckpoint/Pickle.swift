// A restricted pickle virtual machine: decodes the subset torch.save/torchdistill write, executes nothing.
import Foundation
import LadonCore

/// Decodes a pickle stream (protocols 0–5, the opcodes torch and torchdistill checkpoints use) into a
/// ``PickleValue``.
///
/// Only a fixed allow-list of callables is interpreted: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
/// `_rebuild_tensor`, `_rebuild_parameter(_with_state)`, `torch._tensor._rebuild_from_type_v2`, `torch.Size`,
/// `_codecs.encode`, `builtins.set/frozenset`. Any other class or function (e.g. `argparse.Namespace`) becomes an
/// opaque ``PickleObject`` that records its arguments and state; nothing from the stream is ever executed.
/// Storages come from persistent ids (`BINPERSID`), resolved by the caller. Every length, index and count
/// is checked; memo size and nesting depth are capped.
///
/// Hostile streams are bounded (docs/security.md): the stream is at most ``maxBytes``; every step that copies or
/// walks object references is charged to a work budget of ``workPerByte`` units per input byte, so decoding is
/// linear in the input whatever the sharing (memo, `DUP`) does; and every recursion (building the result,
/// `_rebuild_from_type_v2` chains) goes through a depth counter capped at ``maxDepth``.
package struct PickleMachine {
    /// Most memo entries accepted.
    package static let maxMemo = 1 << 22
    /// Deepest container nesting accepted when building the result, and the longest chain of nested
    /// `_rebuild_from_type_v2` calls.
    package static let maxDepth = 256
    /// Largest pickle stream accepted (a Ladon checkpoint's `data.pkl` is well under 1 MB; torchdistill's
    /// optimizer state adds about 150 bytes per tensor).
    package static let maxBytes = 16 << 20
    /// Work units (object references copied or visited) allowed per input byte, plus ``baseWork``.
    package static let workPerByte = 64
    /// Work allowed on top of ``workPerByte`` per byte, so tiny streams are never starved.
    package static let baseWork = 1 << 16
    /// Most dimensions in a tensor size or stride tuple.
    static let maxRank = TorchTensorRef.maxRank

    /// Resolves a persistent id (torch: `('storage', type, key, location, numel)`) to a value.
    package typealias PersistentLoad = (PickleValue) throws(LadonError) -> PickleValue

    private enum Node {
        case leaf(PickleValue)
        case tuple([Int])
        case list([Int])
        case set([Int])
        case dict([(Int, Int)])
        case object(className: String, args: [Int], state: Int?)
    }

    private let bytes: [UInt8]
    private let source: String
    private let persistentLoad: PersistentLoad
    private var pos = 0
    private var nodes: [Node] = []
    private var stack: [Int] = []
    private var marks: [Int] = []
    private var memo: [Int: Int] = [:]
    private var work = 0
    private let workLimit: Int

    /// Decodes `bytes`. `source` names the stream in errors.
    package static func load(_ bytes: [UInt8], source: String = "pickle",
                            persistentLoad: @escaping PersistentLoad = { pid throws(LadonError) in
                                throw .checkpoint(file: nil, .noStorageResolver(persistentID: pid.kindName))
                            }) throws(LadonError) -> PickleValue {
        guard bytes.count <= maxBytes else {
            throw .checkpoint(file: source, .pickleTooLarge(bytes: bytes.count, limit: maxBytes))
        }
        var machine = PickleMachine(bytes: bytes, source: source, persistentLoad: persistentLoad)
        return try machine.run()
    }

    private init(bytes: [UInt8], source: String, persistentLoad: @escaping PersistentLoad) {
        self.bytes = bytes
        self.source = source
        self.persistentLoad = persistentLoad
        self.workLimit = Self.baseWork + Self.workPerByte * bytes.count
    }

    /// Charges `units` of work (references copied or visited) against the linear budget.
    private mutating func charge(_ units: Int) throws(LadonError) {
        work += units
        guard work <= workLimit else {
            throw fail("the stream makes more than \(workLimit) object-reference copies (\(Self.workPerByte) per byte); it is built to stall the reader")
        }
    }

    private func fail(_ message: String, at offset: Int? = nil) -> LadonError {
        .checkpoint(file: source, .damagedPickle(detail: message, offset: offset ?? pos))
    }

    // MARK: Reading

    private mutating func take(_ n: Int) throws(LadonError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - pos else { throw fail("needs \(n) bytes but only \(bytes.count - pos) remain") }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }

    private mutating func uint(_ n: Int) throws(LadonError) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    private mutating func length(_ n: Int) throws(LadonError) -> Int {
        let v = try uint(n)
        guard v <= UInt64(bytes.count - pos) else { throw fail("declares \(v) bytes but only \(bytes.count - pos) remain") }
        return Int(v)
    }

    private mutating func line() throws(LadonError) -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("unterminated text line") }
        defer { pos = end + 1 }
        return String(decoding: bytes[pos..<end], as: UTF8.self)
    }

    private mutating func utf8(_ n: Int) throws(LadonError) -> String {
        let start = pos
        guard let s = String(bytes: try take(n), encoding: .utf8) else { throw fail("string is not valid UTF-8", at: start) }
        return s
    }

    // MARK: Stack

    private mutating func push(_ node: Node) -> Int {
        nodes.append(node)
        stack.append(nodes.count - 1)
        return nodes.count - 1
    }

    private mutating func pushLeaf(_ value: PickleValue) { _ = push(.leaf(value)) }

    private mutating func pop() throws(LadonError) -> Int {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        stack.removeLast()
        return top
    }

    private mutating func popMark() throws(LadonError) -> [Int] {
        guard let mark = marks.popLast() else { throw fail("no MARK on the stack") }
        try charge(stack.count - mark)
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private func top() throws(LadonError) -> Int {
        guard let t = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return t
    }

    private mutating func memoize(_ index: Int) throws(LadonError) {
        guard index >= 0 else { throw fail("negative memo index") }
        guard memo.count < Self.maxMemo || memo[index] != nil else { throw fail("more than \(Self.maxMemo) memo entries") }
        memo[index] = try top()
    }

    private mutating func recall(_ index: Int) throws(LadonError) {
        guard let id = memo[index] else { throw fail("memo entry \(index) was never stored") }
        stack.append(id)
    }

    // MARK: Containers

    private mutating func append(_ items: [Int], to target: Int) throws(LadonError) {
        try charge(items.count)
        switch nodes[target] {
        case .list(var list):
            nodes[target] = .leaf(.none)
            list.append(contentsOf: items)
            nodes[target] = .list(list)
        case .set(var set):
            nodes[target] = .leaf(.none)
            set.append(contentsOf: items)
            nodes[target] = .set(set)
        default:
            throw fail("APPEND/ADDITEMS on a \(kind(target))")
        }
    }

    private mutating func setItems(_ items: [Int], in target: Int) throws(LadonError) {
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
        guard case .dict(var dict) = nodes[target] else { throw fail("SETITEM on a \(kind(target))") }
        try charge(items.count)
        nodes[target] = .leaf(.none)
        for i in stride(from: 0, to: items.count, by: 2) { dict.append((items[i], items[i + 1])) }
        nodes[target] = .dict(dict)
    }

    private func kind(_ id: Int) -> String {
        switch nodes[id] {
        case .leaf(let v): return v.kindName
        case .tuple: return "tuple"
        case .list: return "list"
        case .set: return "set"
        case .dict: return "dict"
        case .object(let c, _, _): return "object \(c)"
        }
    }

    // MARK: Building values

    /// Converts a node to a value; shared nodes are converted once per call, cycles and excessive depth are errors.
    /// Every container converted is charged to the work budget, so converting shared structure again and again
    /// (a fresh cache per call) cannot make decoding quadratic.
    private mutating func value(_ id: Int) throws(LadonError) -> PickleValue {
        var cache: [Int: PickleValue] = [:]
        var active = Set<Int>()
        return try value(id, depth: 0, cache: &cache, active: &active)
    }

    private mutating func value(_ id: Int, depth: Int, cache: inout [Int: PickleValue], active: inout Set<Int>) throws(LadonError) -> PickleValue {
        if let v = cache[id] { return v }
        if case .leaf(let v) = nodes[id] { return v }
        guard depth < Self.maxDepth else { throw fail("containers nested deeper than \(Self.maxDepth)") }
        guard active.insert(id).inserted else { throw fail("a container contains itself (cyclic pickle)") }
        defer { active.remove(id) }
        func all(_ ids: [Int], _ m: inout PickleMachine, _ cache: inout [Int: PickleValue], _ active: inout Set<Int>) throws(LadonError) -> [PickleValue] {
            try m.charge(ids.count)
            var out: [PickleValue] = []
            out.reserveCapacity(ids.count)
            for i in ids { out.append(try m.value(i, depth: depth + 1, cache: &cache, active: &active)) }
            return out
        }
        let result: PickleValue
        switch nodes[id] {
        case .leaf(let v): result = v
        case .tuple(let ids): result = .tuple(try all(ids, &self, &cache, &active))
        case .list(let ids): result = .list(try all(ids, &self, &cache, &active))
        case .set(let ids): result = .set(try all(ids, &self, &cache, &active))
        case .dict(let pairs):
            try charge(2 * pairs.count)
            var items: [PickleDictItem] = []
            items.reserveCapacity(pairs.count)
            for (k, v) in pairs {
                items.append(PickleDictItem(key: try value(k, depth: depth + 1, cache: &cache, active: &active),
                                            value: try value(v, depth: depth + 1, cache: &cache, active: &active)))
            }
            result = .dict(items)
        case .object(let className, let args, let state):
            var s: PickleValue? = nil
            if let state { s = try value(state, depth: depth + 1, cache: &cache, active: &active) }
            result = .object(PickleObject(className: className, args: try all(args, &self, &cache, &active), state: s))
        }
        cache[id] = result
        return result
    }

    /// Applies an allow-listed callable to its arguments; anything else becomes an opaque object.
    private mutating func reduce(callable: Int, args argsNode: Int) throws(LadonError) -> Node {
        guard case .leaf(.global(let module, let name)) = nodes[callable] else {
            throw fail("REDUCE on a \(kind(callable)), expected a global")
        }
        guard case .tuple(let argIDs) = nodes[argsNode] else { throw fail("REDUCE arguments are a \(kind(argsNode)), expected a tuple") }
        return try apply(module: module, name: name, argIDs: argIDs)
    }

    private mutating func apply(module: String, name: String, argIDs: [Int]) throws(LadonError) -> Node {
        var (module, name, argIDs) = (module, name, argIDs)
        // `_rebuild_from_type_v2(func, type, args, state)` calls `func(*args)`: unwrapped in a loop (not by
        // recursion, which a chain of nested calls would overflow), at most `maxDepth` times.
        var unwrapped = 0
        while (module == "torch._tensor" && name == "_rebuild_from_type_v2") {
            guard argIDs.count >= 3, case .leaf(.global(let m, let n)) = nodes[argIDs[0]],
                  case .tuple(let inner) = nodes[argIDs[2]] else { throw fail("malformed _rebuild_from_type_v2 call") }
            unwrapped += 1
            guard unwrapped <= Self.maxDepth else {
                throw fail("_rebuild_from_type_v2 calls nested deeper than \(Self.maxDepth)")
            }
            (module, name, argIDs) = (m, n, inner)
        }
        // Protocol <= 2 pickles written by Python 3 use the Python 2 module name of builtins.
        let qualified = (module == "__builtin__" ? "builtins" : module) + "." + name
        switch qualified {
        case "collections.OrderedDict", "builtins.dict":
            var pairs: [(Int, Int)] = []
            if let first = argIDs.first {
                let items: [Int]
                switch nodes[first] {
                case .list(let l), .tuple(let l): items = l
                case .dict(let d):
                    try charge(d.count)
                    return .dict(d)
                default: throw fail("\(qualified) called with a \(kind(first))")
                }
                try charge(items.count)
                for item in items {
                    switch nodes[item] {
                    case .tuple(let kv) where kv.count == 2, .list(let kv) where kv.count == 2: pairs.append((kv[0], kv[1]))
                    default: throw fail("\(qualified) item is not a key/value pair")
                    }
                }
            }
            return .dict(pairs)
        case "builtins.set", "builtins.frozenset":
            guard let first = argIDs.first else { return .set([]) }
            switch nodes[first] {
            case .list(let l), .tuple(let l), .set(let l):
                try charge(l.count)
                return .set(l)
            default: throw fail("\(qualified) called with a \(kind(first))")
            }
        case "torch.Size":
            guard argIDs.count == 1, case .tuple(let t) = nodes[argIDs[0]] else { throw fail("torch.Size needs one tuple") }
            try charge(t.count)
            return .tuple(t)
        case "_codecs.encode":
            guard let first = argIDs.first, case .leaf(.string(let text)) = nodes[first] else { throw fail("_codecs.encode needs a str") }
            try charge(text.utf8.count)
            var out: [UInt8] = []
            for scalar in text.unicodeScalars {
                guard scalar.value < 256 else { throw fail("_codecs.encode latin-1 text has a character above U+00FF") }
                out.append(UInt8(scalar.value))
            }
            return .leaf(.bytes(out))
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            return .leaf(.tensor(try rebuildTensor(argIDs, qualified)))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let first = argIDs.first, case .leaf(.tensor) = nodes[first] else { throw fail("\(qualified) without a tensor") }
            return nodes[first]
        default:
            return .object(className: qualified, args: argIDs, state: nil)
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: reads only the four arguments it needs, straight
    /// from the nodes (constant work per dimension; the rest, e.g. backward hooks, is never converted).
    private mutating func rebuildTensor(_ argIDs: [Int], _ callable: String) throws(LadonError) -> TorchTensorRef {
        guard argIDs.count >= 4, case .leaf(.storage(let storage)) = nodes[argIDs[0]],
              case .leaf(let offsetValue) = nodes[argIDs[1]], let offset = offsetValue.intValue else {
            throw fail("\(callable) arguments are not (storage, offset, size, stride, ...)")
        }
        let shape = try integers(argIDs[2], "size", callable)
        let strides = try integers(argIDs[3], "stride", callable)
        do {
            return try TorchTensorRef(storage: storage, storageOffset: offset, shape: shape, strides: strides)
        } catch .checkpoint(nil, let problem) {
            throw .checkpoint(file: source, problem)   // name the file the view came from
        }
    }

    /// A tuple or list of at most `maxRank` integers.
    private mutating func integers(_ id: Int, _ what: String, _ callable: String) throws(LadonError) -> [Int] {
        let ids: [Int]
        switch nodes[id] {
        case .tuple(let l), .list(let l): ids = l
        default: throw fail("\(callable) \(what) is a \(kind(id)), expected a tuple of integers")
        }
        guard ids.count <= Self.maxRank else { throw fail("\(callable) \(what) has \(ids.count) dimensions, more than \(Self.maxRank)") }
        try charge(ids.count)
        var out: [Int] = []
        out.reserveCapacity(ids.count)
        for i in ids {
            guard case .leaf(let v) = nodes[i], let n = v.intValue else {
                throw fail("\(callable) \(what) has a non-integer \(kind(i))")
            }
            out.append(n)
        }
        return out
    }

    // MARK: The loop

    private mutating func run() throws(LadonError) -> PickleValue {
        while true {
            let at = pos
            guard pos < bytes.count else { throw fail("stream ends without STOP") }
            let op = bytes[pos]
            pos += 1
            switch op {
            case 0x80: // PROTO
                let v = try uint(1)
                guard v <= 5 else { throw fail("pickle protocol \(v) is not supported", at: at) }
            case 0x95: _ = try uint(8) // FRAME: framing is only a hint for buffered readers
            case 0x2E: // STOP
                let result = try pop()
                return try value(result)
            case 0x28: marks.append(stack.count) // MARK
            case 0x7D: _ = push(.dict([])) // EMPTY_DICT
            case 0x5D: _ = push(.list([])) // EMPTY_LIST
            case 0x29: _ = push(.tuple([])) // EMPTY_TUPLE
            case 0x8F: _ = push(.set([])) // EMPTY_SET
            case 0x4E: pushLeaf(.none)
            case 0x88: pushLeaf(.bool(true))
            case 0x89: pushLeaf(.bool(false))
            case 0x4A: pushLeaf(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x4B: pushLeaf(.int(Int(try uint(1)))) // BININT1
            case 0x4D: pushLeaf(.int(Int(try uint(2)))) // BININT2
            case 0x8A, 0x8B: // LONG1, LONG4
                let n = try length(op == 0x8A ? 1 : 4)
                pushLeaf(Self.integer(littleEndian: Array(try take(n))))
            case 0x49, 0x4C: // INT, LONG (text)
                var text = try line()
                if op == 0x4C, text.hasSuffix("L") { text.removeLast() }
                if text == "01" { pushLeaf(.bool(true)) } else if text == "00" { pushLeaf(.bool(false)) } else {
                    guard let v = Int(text) else { throw fail("INT/LONG text '\(text.prefix(40))' is not a 64-bit integer", at: at) }
                    pushLeaf(.int(v))
                }
            case 0x47: pushLeaf(.float(Double(bitPattern: try uint(8).byteSwapped))) // BINFLOAT, big-endian
            case 0x46: // FLOAT (text)
                let text = try line()
                guard let v = Double(text) else { throw fail("FLOAT text '\(text.prefix(40))' is not a number", at: at) }
                pushLeaf(.float(v))
            case 0x8C: pushLeaf(.string(try utf8(try length(1)))) // SHORT_BINUNICODE
            case 0x58: pushLeaf(.string(try utf8(try length(4)))) // BINUNICODE
            case 0x8D: pushLeaf(.string(try utf8(try length(8)))) // BINUNICODE8
            case 0x55, 0x54: // SHORT_BINSTRING, BINSTRING (Python 2 str): decoded as latin-1
                let raw = try take(try length(op == 0x55 ? 1 : 4))
                pushLeaf(.string(String(raw.map { Character(Unicode.Scalar($0)) })))
            case 0x43: pushLeaf(.bytes(Array(try take(try length(1))))) // SHORT_BINBYTES
            case 0x42: pushLeaf(.bytes(Array(try take(try length(4))))) // BINBYTES
            case 0x8E, 0x96: pushLeaf(.bytes(Array(try take(try length(8))))) // BINBYTES8, BYTEARRAY8
            case 0x85, 0x86, 0x87: // TUPLE1..3
                let n = Int(op - 0x84)
                guard stack.count - (marks.last ?? 0) >= n else { throw fail("stack underflow", at: at) }
                let items = Array(stack.suffix(n))
                stack.removeLast(n)
                _ = push(.tuple(items))
            case 0x74: _ = push(.tuple(try popMark())) // TUPLE
            case 0x6C: _ = push(.list(try popMark())) // LIST
            case 0x64: // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items", at: at) }
                _ = push(.dict(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }))
            case 0x91: _ = push(.set(try popMark())) // FROZENSET
            case 0x61: // APPEND
                let item = try pop()
                try append([item], to: try top())
            case 0x65: // APPENDS
                let items = try popMark()
                try append(items, to: try top())
            case 0x90: // ADDITEMS
                let items = try popMark()
                try append(items, to: try top())
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v], in: try top())
            case 0x75: // SETITEMS
                let items = try popMark()
                try setItems(items, in: try top())
            case 0x71: try memoize(Int(try uint(1))) // BINPUT
            case 0x72: try memoize(Int(try uint(4))) // LONG_BINPUT
            case 0x94: try memoize(memo.count) // MEMOIZE
            case 0x70: // PUT (text)
                guard let i = Int(try line()) else { throw fail("PUT index is not a number", at: at) }
                try memoize(i)
            case 0x68: try recall(Int(try uint(1))) // BINGET
            case 0x6A: try recall(Int(try uint(4))) // LONG_BINGET
            case 0x67: // GET (text)
                guard let i = Int(try line()) else { throw fail("GET index is not a number", at: at) }
                try recall(i)
            case 0x63: // GLOBAL
                let module = try line(), name = try line()
                pushLeaf(.global(module: module, name: name))
            case 0x93: // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard case .leaf(.string(let name)) = nodes[n], case .leaf(.string(let module)) = nodes[m] else {
                    throw fail("STACK_GLOBAL needs two strings", at: at)
                }
                pushLeaf(.global(module: module, name: name))
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                _ = push(try reduce(callable: callable, args: args))
            case 0x81: // NEWOBJ
                let args = try pop(), cls = try pop()
                _ = push(try reduce(callable: cls, args: args))
            case 0x92: // NEWOBJ_EX (kwargs are recorded as a trailing argument of the opaque object)
                let kwargs = try pop(), args = try pop(), cls = try pop()
                var node = try reduce(callable: cls, args: args)
                if case .object(let c, let a, let s) = node { node = .object(className: c, args: a + [kwargs], state: s) }
                _ = push(node)
            case 0x62: // BUILD
                let state = try pop()
                let target = try top()
                if case .object(let c, let a, _) = nodes[target] { nodes[target] = .object(className: c, args: a, state: state) }
                // dicts (OrderedDict._metadata) and tensors (parameter state) keep their value; the state is dropped.
            case 0x51: // BINPERSID
                let id = try pop()
                let pid = try value(id)
                pushLeaf(try persistentLoad(pid))
            case 0x50: pushLeaf(try persistentLoad(.string(try line()))) // PERSID
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: stack.append(try top()) // DUP
            default:
                throw fail(String(format: "unsupported or invalid opcode 0x%02x", op), at: at)
            }
        }
    }

    /// Decodes a little-endian two's-complement integer of any width (LONG1/LONG4).
    static func integer(littleEndian raw: [UInt8]) -> PickleValue {
        if raw.isEmpty { return .int(0) }
        guard raw.count <= 8 else { return .bigInt(raw) }
        var v: UInt64 = 0
        for (i, b) in raw.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        if raw.count < 8, raw.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(raw.count)) }
        return .int(Int(Int64(bitPattern: v)))
    }
}
