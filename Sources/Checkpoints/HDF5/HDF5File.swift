import CHDF5
import Engine
import Foundation

/// An element type SafeTune stores in HDF5 datasets.
public protocol HDF5Element {
    /// The in-memory HDF5 type of one element.
    static var memoryType: hid_t { get }
    /// The little-endian on-disk type written for this element.
    static var fileType: hid_t { get }
    /// HDF5 type class and byte size that a dataset must have to be read as this element.
    static var typeClass: H5T_class_t { get }
    /// Size of one element in bytes.
    static var byteSize: Int { get }
    /// Whether the integer type is signed (ignored for floats).
    static var isSigned: Bool { get }
    /// The name used in error messages.
    static var typeName: String { get }
}

extension Float: HDF5Element {
    public static var memoryType: hid_t { st_H5T_NATIVE_FLOAT() }
    public static var fileType: hid_t { st_H5T_IEEE_F32LE() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
    public static var byteSize: Int { 4 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "float32" }
}

extension Int8: HDF5Element {
    public static var memoryType: hid_t { st_H5T_NATIVE_INT8() }
    public static var fileType: hid_t { st_H5T_STD_I8LE() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var byteSize: Int { 1 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "int8" }
}

extension UInt8: HDF5Element {
    public static var memoryType: hid_t { st_H5T_NATIVE_UINT8() }
    public static var fileType: hid_t { st_H5T_STD_U8LE() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var byteSize: Int { 1 }
    public static var isSigned: Bool { false }
    public static var typeName: String { "uint8" }
}

extension Int32: HDF5Element {
    public static var memoryType: hid_t { st_H5T_NATIVE_INT32() }
    public static var fileType: hid_t { st_H5T_STD_I32LE() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
    public static var byteSize: Int { 4 }
    public static var isSigned: Bool { true }
    public static var typeName: String { "int32" }
}

/// The kind of object found at a path.
public enum HDF5ObjectKind: Sendable, Equatable {
    case group
    case dataset
}

/// One open HDF5 file. Every method opens the objects it needs by path and closes them
/// before returning, so no HDF5 handle outlives a call; the file itself is closed by
/// `close()` or when the value is released.
///
/// The serial HDF5 library is not thread-safe, so all calls from all files go through
/// one process-wide lock.
public final class HDF5File: @unchecked Sendable {
    /// The file's path, used in every error message.
    public let path: String
    private var id: hid_t

    /// Serialises every HDF5 call in the process (the serial build has global state).
    static let lock = NSRecursiveLock()

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        if id >= 0 { H5Fclose(id) }
    }

    /// Turns off libhdf5's clean-up at process exit; call before any other HDF5 call.
    /// libhdf5 1.10 keeps a file whose close failed (a write that met a full disk) half
    /// closed, and its exit handler then crashes on it (SIGSEGV in `H5F__close_cb`), so a
    /// command that reported the full disk in one line would still die with a backtrace.
    /// Every file SafeTune writes is closed explicitly, so nothing is left to flush.
    public static func skipLibraryCleanupAtExit() {
        lock.lock()
        defer { lock.unlock() }
        H5dont_atexit()
    }

    /// Initialises libhdf5 now rather than at the first file (for processes that fork readers).
    public static func initializeLibrary() {
        lock.lock()
        defer { lock.unlock() }
        H5open()
        st_H5_silence_errors()
    }

    /// Creates (or truncates) a file at `url`.
    public static func create(at url: URL) throws(HDF5Error) -> HDF5File {
        lock.lock()
        defer { lock.unlock() }
        st_H5_silence_errors()
        let id = H5Fcreate(url.path, st_H5F_ACC_TRUNC(), st_H5P_DEFAULT(), st_H5P_DEFAULT())
        guard id >= 0 else { throw .cannotCreate(file: url.path) }
        return HDF5File(path: url.path, id: id)
    }

    /// Opens an existing file, read-only unless `writable`. Distinguishes a missing file,
    /// a file that is not HDF5 at all, and an HDF5 file that is truncated or damaged.
    public static func open(_ url: URL, writable: Bool = false) throws(HDF5Error) -> HDF5File {
        lock.lock()
        defer { lock.unlock() }
        st_H5_silence_errors()
        let file = url.path
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw .cannotOpen(file: file, reason: FileManager.default.fileExists(atPath: file) ? "not readable" : "no such file")
        }
        guard H5Fis_hdf5(file) > 0 else { throw .notHDF5(file: file) }
        let id = H5Fopen(file, writable ? st_H5F_ACC_RDWR() : st_H5F_ACC_RDONLY(), st_H5P_DEFAULT())
        guard id >= 0 else { throw .damaged(file: file) }
        return HDF5File(path: file, id: id)
    }

    /// Closes the file, reporting a failure to write its metadata.
    public func close() throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        guard id >= 0 else { return }
        let status = H5Fclose(id)
        id = -1
        if status < 0 { throw .failed(file: path, path: "/", operation: "close") }
    }

    /// Writes all buffered data and metadata to the operating system.
    public func flush() throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let fid = try openID()
        if H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0 { throw .failed(file: path, path: "/", operation: "flush") }
    }

    // MARK: Structure

    /// Creates a group and any missing parents. An existing group is left as it is.
    public func createGroup(_ group: String) throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let fid = try openID()
        if kindLocked(group) == .group { return }
        let lcpl = try intermediateLinkList()
        defer { H5Pclose(lcpl) }
        let gid = H5Gcreate2(fid, group, lcpl, st_H5P_DEFAULT(), st_H5P_DEFAULT())
        guard gid >= 0 else { throw .failed(file: path, path: group, operation: "create group") }
        H5Gclose(gid)
    }

    /// What is stored at `objectPath`, or nil when nothing is.
    public func kind(of objectPath: String) -> HDF5ObjectKind? {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        return kindLocked(objectPath)
    }

    /// Names of the links directly inside a group, in name order.
    public func children(of group: String) throws(HDF5Error) -> [String] {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let gid = try openObject(group, expecting: .group)
        defer { H5Oclose(gid) }
        var info = H5G_info_t()
        guard H5Gget_info(gid, &info) >= 0 else { throw .failed(file: path, path: group, operation: "group info") }
        var names: [String] = []
        names.reserveCapacity(Int(info.nlinks))
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, st_H5P_DEFAULT())
            guard n >= 0 else { throw .failed(file: path, path: group, operation: "link name") }
            var buffer = [CChar](repeating: 0, count: Int(n) + 1)
            guard H5Lget_name_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, st_H5P_DEFAULT()) >= 0 else {
                throw .failed(file: path, path: group, operation: "link name")
            }
            names.append(String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    // MARK: Datasets

    /// Shape of a dataset (empty for a scalar), checked to be of element type `T`.
    public func shape<T: HDF5Element>(of dataset: String, as type: T.Type) throws(HDF5Error) -> [Int] {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let did = try openObject(dataset, expecting: .dataset)
        defer { H5Oclose(did) }
        try checkType(did, dataset, T.self)
        return try shapeLocked(did, dataset)
    }

    /// Writes a new dataset of `shape` from `values` (row-major), creating parent groups.
    public func write<T: HDF5Element>(_ dataset: String, shape: [Int], values: UnsafeBufferPointer<T>) throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let fid = try openID()
        guard Tensor.checkedCount(shape) == values.count else {
            throw .wrongType(file: path, path: dataset, expected: "\(shape)", found: "\(values.count) values")
        }
        let space = try makeSpace(shape, dataset)
        defer { H5Sclose(space) }
        let lcpl = try intermediateLinkList()
        defer { H5Pclose(lcpl) }
        let did = H5Dcreate2(fid, dataset, T.fileType, space, lcpl, st_H5P_DEFAULT(), st_H5P_DEFAULT())
        guard did >= 0 else { throw .failed(file: path, path: dataset, operation: "create dataset") }
        defer { H5Dclose(did) }
        guard values.count > 0, let base = values.baseAddress else { return }
        if H5Dwrite(did, T.memoryType, st_H5S_ALL(), st_H5S_ALL(), st_H5P_DEFAULT(), base) < 0 {
            throw .failed(file: path, path: dataset, operation: "write")
        }
    }

    /// Creates a dataset without writing it (HDF5 allocates its storage lazily and reads
    /// the unwritten elements as zeros); used to build files with hostile shapes in tests.
    func declare<T: HDF5Element>(_ dataset: String, shape: [Int], as type: T.Type) throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let fid = try openID()
        let space = try makeSpace(shape, dataset)
        defer { H5Sclose(space) }
        let lcpl = try intermediateLinkList()
        defer { H5Pclose(lcpl) }
        let did = H5Dcreate2(fid, dataset, T.fileType, space, lcpl, st_H5P_DEFAULT(), st_H5P_DEFAULT())
        guard did >= 0 else { throw .failed(file: path, path: dataset, operation: "create dataset") }
        H5Dclose(did)
    }

    /// Writes a new dataset from an array.
    public func write<T: HDF5Element>(_ dataset: String, shape: [Int], array: [T]) throws(HDF5Error) {
        let result: Result<Void, HDF5Error> = array.withUnsafeBufferPointer { buffer in
            do throws(HDF5Error) { try write(dataset, shape: shape, values: buffer); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Reads a whole dataset into `destination`, whose size must equal the dataset's.
    public func read<T: HDF5Element>(_ dataset: String, into destination: UnsafeMutableBufferPointer<T>) throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let did = try openObject(dataset, expecting: .dataset)
        defer { H5Oclose(did) }
        try checkType(did, dataset, T.self)
        let shape = try shapeLocked(did, dataset)
        guard Tensor.checkedCount(shape) == destination.count else {
            throw .wrongType(file: path, path: dataset, expected: "\(destination.count) elements", found: "shape \(shape)")
        }
        guard destination.count > 0, let base = destination.baseAddress else { return }
        if H5Dread(did, T.memoryType, st_H5S_ALL(), st_H5S_ALL(), st_H5P_DEFAULT(), base) < 0 {
            throw .failed(file: path, path: dataset, operation: "read")
        }
    }

    /// Reads a whole dataset as an array after checking its element count against `limit`.
    public func readArray<T: HDF5Element>(_ dataset: String, as type: T.Type, limit: Int) throws(HDF5Error) -> (shape: [Int], values: [T]) {
        let shape = try self.shape(of: dataset, as: T.self)
        guard let n = Tensor.checkedCount(shape), n <= limit else {
            throw .tooLarge(file: path, path: dataset, shape: shape, limit: limit)
        }
        var values = [T](unsafeUninitializedCapacity: n) { _, count in count = n }
        let result: Result<Void, HDF5Error> = values.withUnsafeMutableBufferPointer { buffer in
            do throws(HDF5Error) { try read(dataset, into: buffer); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
        return (shape, values)
    }

    // MARK: Attributes

    /// Sets (replacing) attribute `name` on the group or dataset at `object`.
    public func setAttribute(_ name: String, _ value: AttributeValue, on object: String) throws(HDF5Error) {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let oid = try openObject(object, expecting: nil)
        defer { H5Oclose(oid) }
        let where_ = "\(object)@\(name)"
        if H5Aexists(oid, name) > 0, H5Adelete(oid, name) < 0 {
            throw .failed(file: path, path: where_, operation: "replace attribute")
        }
        switch value {
        case let .string(s):
            let type = H5Tcopy(st_H5T_C_S1())
            defer { H5Tclose(type) }
            H5Tset_size(type, st_H5T_VARIABLE())
            H5Tset_cset(type, H5T_CSET_UTF8)
            let space = H5Screate(H5S_SCALAR)
            defer { H5Sclose(space) }
            let aid = H5Acreate2(oid, name, type, space, st_H5P_DEFAULT(), st_H5P_DEFAULT())
            guard aid >= 0 else { throw .failed(file: path, path: where_, operation: "create attribute") }
            defer { H5Aclose(aid) }
            let status: herr_t = s.withCString { cstr in
                var pointer: UnsafePointer<CChar>? = cstr
                return H5Awrite(aid, type, &pointer)
            }
            if status < 0 { throw .failed(file: path, path: where_, operation: "write attribute") }
        case let .int(v):
            try writeNumeric(oid, where_, name, [v], scalar: true, file: st_H5T_STD_I64LE(), memory: st_H5T_NATIVE_INT64())
        case let .ints(v):
            try writeNumeric(oid, where_, name, v, scalar: false, file: st_H5T_STD_I64LE(), memory: st_H5T_NATIVE_INT64())
        case let .double(v):
            try writeNumeric(oid, where_, name, [v], scalar: true, file: st_H5T_IEEE_F64LE(), memory: st_H5T_NATIVE_DOUBLE())
        case let .doubles(v):
            try writeNumeric(oid, where_, name, v, scalar: false, file: st_H5T_IEEE_F64LE(), memory: st_H5T_NATIVE_DOUBLE())
        }
    }

    /// Attribute `name` of the object at `object`, or nil when the object has none by that name.
    public func attribute(_ name: String, of object: String) throws(HDF5Error) -> AttributeValue? {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let oid = try openObject(object, expecting: nil)
        defer { H5Oclose(oid) }
        guard H5Aexists(oid, name) > 0 else { return nil }
        return try readAttributeLocked(oid, object, name)
    }

    /// All attributes of the object at `object`.
    public func attributes(of object: String) throws(HDF5Error) -> [String: AttributeValue] {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let oid = try openObject(object, expecting: nil)
        defer { H5Oclose(oid) }
        let count = st_H5_attribute_count(oid)
        guard count >= 0 else { throw .failed(file: path, path: object, operation: "attribute count") }
        var result: [String: AttributeValue] = [:]
        for i in 0..<hsize_t(count) {
            let n = H5Aget_name_by_idx(oid, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, st_H5P_DEFAULT())
            guard n >= 0 else { throw .failed(file: path, path: object, operation: "attribute name") }
            var buffer = [CChar](repeating: 0, count: Int(n) + 1)
            guard H5Aget_name_by_idx(oid, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, st_H5P_DEFAULT()) >= 0 else {
                throw .failed(file: path, path: object, operation: "attribute name")
            }
            let name = String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            result[name] = try readAttributeLocked(oid, object, name)
        }
        return result
    }

    // MARK: Internals (called with the lock held)

    /// Longest attribute array accepted from a file.
    static let maxAttributeElements = 1 << 20
    /// Longest string attribute accepted from a file (bytes).
    static let maxStringBytes = 64 << 20

    private func openID() throws(HDF5Error) -> hid_t {
        guard id >= 0 else { throw .closed(file: path) }
        return id
    }

    private func kindLocked(_ objectPath: String) -> HDF5ObjectKind? {
        guard id >= 0 else { return nil }
        if objectPath == "/" { return .group }
        // H5Lexists needs every parent to exist, so walk the path one link at a time.
        var prefix = ""
        for part in objectPath.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + part
            guard H5Lexists(id, prefix, st_H5P_DEFAULT()) > 0 else { return nil }
        }
        let oid = H5Oopen(id, objectPath, st_H5P_DEFAULT())
        guard oid >= 0 else { return nil }
        defer { H5Oclose(oid) }
        switch H5Iget_type(oid) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return nil
        }
    }

    private func openObject(_ objectPath: String, expecting kind: HDF5ObjectKind?) throws(HDF5Error) -> hid_t {
        let fid = try openID()
        guard let found = kindLocked(objectPath) else { throw .missing(file: path, path: objectPath) }
        if let kind, kind != found {
            throw .wrongType(file: path, path: objectPath, expected: "\(kind)", found: "\(found)")
        }
        let oid = H5Oopen(fid, objectPath, st_H5P_DEFAULT())
        guard oid >= 0 else { throw .failed(file: path, path: objectPath, operation: "open") }
        return oid
    }

    private func intermediateLinkList() throws(HDF5Error) -> hid_t {
        let lcpl = H5Pcreate(st_H5P_LINK_CREATE())
        guard lcpl >= 0, H5Pset_create_intermediate_group(lcpl, 1) >= 0 else {
            throw .failed(file: path, path: "/", operation: "link property list")
        }
        return lcpl
    }

    private func makeSpace(_ shape: [Int], _ where_: String) throws(HDF5Error) -> hid_t {
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dims = shape.map { hsize_t(max($0, 0)) }
            space = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        guard space >= 0 else { throw .failed(file: path, path: where_, operation: "create dataspace") }
        return space
    }

    private func shapeLocked(_ did: hid_t, _ where_: String) throws(HDF5Error) -> [Int] {
        let space = H5Dget_space(did)
        guard space >= 0 else { throw .failed(file: path, path: where_, operation: "dataspace") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0, rank <= 32 else { throw .failed(file: path, path: where_, operation: "dataspace rank") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0, H5Sget_simple_extent_dims(space, &dims, nil) < 0 {
            throw .failed(file: path, path: where_, operation: "dataspace dims")
        }
        var shape: [Int] = []
        for d in dims {
            guard d <= hsize_t(Int.max) else { throw .tooLarge(file: path, path: where_, shape: [Int.max], limit: Int.max) }
            shape.append(Int(d))
        }
        return shape
    }

    private func checkType<T: HDF5Element>(_ did: hid_t, _ where_: String, _: T.Type) throws(HDF5Error) {
        let type = H5Dget_type(did)
        guard type >= 0 else { throw .failed(file: path, path: where_, operation: "datatype") }
        defer { H5Tclose(type) }
        let cls = H5Tget_class(type)
        let size = H5Tget_size(type)
        let signed = cls == H5T_INTEGER ? H5Tget_sign(type) == H5T_SGN_2 : true
        guard cls == T.typeClass, size == T.byteSize, signed == T.isSigned else {
            throw .wrongType(file: path, path: where_, expected: T.typeName, found: Self.describe(cls, size, signed))
        }
    }

    private static func describe(_ cls: H5T_class_t, _ size: Int, _ signed: Bool) -> String {
        switch cls {
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_INTEGER: return "\(signed ? "int" : "uint")\(size * 8)"
        case H5T_STRING: return "string"
        default: return "HDF5 type class \(cls.rawValue)"
        }
    }

    private func writeNumeric<T>(_ oid: hid_t, _ where_: String, _ name: String, _ values: [T], scalar: Bool,
                                 file: hid_t, memory: hid_t) throws(HDF5Error) {
        let space: hid_t
        if scalar {
            space = H5Screate(H5S_SCALAR)
        } else {
            var dims = [hsize_t(values.count)]
            space = H5Screate_simple(1, &dims, nil)
        }
        guard space >= 0 else { throw .failed(file: path, path: where_, operation: "create dataspace") }
        defer { H5Sclose(space) }
        let aid = H5Acreate2(oid, name, file, space, st_H5P_DEFAULT(), st_H5P_DEFAULT())
        guard aid >= 0 else { throw .failed(file: path, path: where_, operation: "create attribute") }
        defer { H5Aclose(aid) }
        let status = values.withUnsafeBytes { raw in
            raw.isEmpty ? 0 : H5Awrite(aid, memory, raw.baseAddress)
        }
        if status < 0 { throw .failed(file: path, path: where_, operation: "write attribute") }
    }

    private func readAttributeLocked(_ oid: hid_t, _ object: String, _ name: String) throws(HDF5Error) -> AttributeValue {
        let where_ = "\(object)@\(name)"
        let aid = H5Aopen(oid, name, st_H5P_DEFAULT())
        guard aid >= 0 else { throw .failed(file: path, path: where_, operation: "open attribute") }
        defer { H5Aclose(aid) }
        let type = H5Aget_type(aid)
        guard type >= 0 else { throw .failed(file: path, path: where_, operation: "attribute type") }
        defer { H5Tclose(type) }
        let space = H5Aget_space(aid)
        guard space >= 0 else { throw .failed(file: path, path: where_, operation: "attribute space") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        let points = H5Sget_simple_extent_npoints(space)
        guard rank >= 0, points >= 0, points <= HDF5File.maxAttributeElements else {
            throw .wrongType(file: path, path: where_, expected: "at most \(HDF5File.maxAttributeElements) values", found: "\(points)")
        }
        let cls = H5Tget_class(type)
        switch cls {
        case H5T_STRING:
            guard points == 1 else { throw .wrongType(file: path, path: where_, expected: "one string", found: "\(points) strings") }
            // A plain C-string memory type cannot convert UTF-8 attributes: read with a copy of the attribute's own type.
            let memtype = H5Tcopy(type)
            defer { H5Tclose(memtype) }
            if H5Tis_variable_str(type) > 0 {
                var pointer: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(aid, memtype, &pointer) >= 0 else { throw .failed(file: path, path: where_, operation: "read attribute") }
                guard let pointer else { return .string("") }
                defer { H5free_memory(pointer) }
                return .string(String(cString: pointer))
            }
            let size = H5Tget_size(type)
            guard size > 0, size <= HDF5File.maxStringBytes else {
                throw .wrongType(file: path, path: where_, expected: "a string", found: "\(size)-byte string")
            }
            var bytes = [UInt8](repeating: 0, count: size + 1)
            guard H5Aread(aid, memtype, &bytes) >= 0 else { throw .failed(file: path, path: where_, operation: "read attribute") }
            let end = bytes.firstIndex(of: 0) ?? size
            return .string(String(decoding: bytes[..<end], as: UTF8.self))
        case H5T_INTEGER:
            var values = [Int64](repeating: 0, count: Int(points))
            if points > 0, H5Aread(aid, st_H5T_NATIVE_INT64(), &values) < 0 {
                throw .failed(file: path, path: where_, operation: "read attribute")
            }
            return rank == 0 && values.count == 1 ? .int(values[0]) : .ints(values)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: Int(points))
            if points > 0, H5Aread(aid, st_H5T_NATIVE_DOUBLE(), &values) < 0 {
                throw .failed(file: path, path: where_, operation: "read attribute")
            }
            return rank == 0 && values.count == 1 ? .double(values[0]) : .doubles(values)
        default:
            throw .wrongType(file: path, path: where_, expected: "string or number", found: Self.describe(cls, H5Tget_size(type), true))
        }
    }
}

extension Tensor {
    /// Product of `shape`, or nil when a dimension is negative or the product overflows.
    public static func checkedCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }
}
