import EngineAPI
import Foundation
import StorageAPI

/// The secondary indexes the engine's lookups use. The store maintains them in the same transaction as every write
/// of the kind (StorageAPI/Index.swift); `GatehouseEngine.open` declares them, and bumping an indexer's version
/// rebuilds its entries at the next start.
extension GatehouseEngine {
    public static let indexCatalog = IndexCatalog([kmsObjectIndexer])

    /// KMIP managed objects, per project. Every key ends with the Initial Date (milliseconds), so a descending scan
    /// of one value returns the newest objects first, the order Locate answers in.
    enum KMSIndex {
        static let name = "name"
        static let objectType = "type"
        static let algorithm = "alg"
        static let state = "state"
        static let group = "group"
        static let created = "created"
        static let custom = "custom"
    }

    /// Only the metadata of a stored object (the sealed material is not decoded).
    private struct StoredMeta: Decodable {
        var meta: ManagedObject
    }

    static let kmsObjectIndexer = RecordIndexer(
        kind: objectKind, version: 1,
        [
            IndexDefinition(KMSIndex.name), IndexDefinition(KMSIndex.objectType), IndexDefinition(KMSIndex.algorithm),
            IndexDefinition(KMSIndex.state), IndexDefinition(KMSIndex.group), IndexDefinition(KMSIndex.created),
            IndexDefinition(KMSIndex.custom),
        ]
    ) { record in
        guard let m = try? JSONDecoder().decode(StoredMeta.self, from: record.body).meta else { return [] }
        let t = Record.millis(m.initialDate)
        var out = [
            IndexEntry(KMSIndex.created, IndexKey().appending(t)),
            IndexEntry(KMSIndex.objectType, IndexKey(m.objectType.rawValue).appending(t)),
            IndexEntry(KMSIndex.state, IndexKey().appending(Int64(m.state.rawValue)).appending(t)),
        ]
        if let a = m.algorithm { out.append(IndexEntry(KMSIndex.algorithm, IndexKey().appending(Int64(a)).appending(t))) }
        for n in m.names { out.append(IndexEntry(KMSIndex.name, IndexKey(n).appending(t))) }
        for g in m.objectGroups { out.append(IndexEntry(KMSIndex.group, IndexKey(g).appending(t))) }
        for (attribute, values) in m.customAttributes ?? [:] {
            for v in values { out.append(IndexEntry(KMSIndex.custom, IndexKey(attribute).appending(bytes: v).appending(t))) }
        }
        return out
    }

    /// The index a Locate scans and the prefix of the keys that can match: the most selective condition the filter
    /// has (a name, a client attribute, a group, the algorithm, the state, the object type), else every object. The
    /// rest of the filter is checked on each object the scan returns.
    static func locatePlan(_ filter: LocateFilter) -> (index: String, prefix: IndexKey) {
        if let n = filter.name { return (KMSIndex.name, IndexKey(n)) }
        // An attribute whose filter value is the implicit default also matches objects without it: not indexable.
        if let (attribute, value) = filter.customAttributes.sorted(by: { $0.key < $1.key })
            .first(where: { !filter.customAttributeDefaults.contains($0.key) })
        {
            return (KMSIndex.custom, IndexKey(attribute).appending(bytes: value))
        }
        if let g = filter.objectGroup { return (KMSIndex.group, IndexKey(g)) }
        if let a = filter.algorithm { return (KMSIndex.algorithm, IndexKey().appending(Int64(a))) }
        if let s = filter.state { return (KMSIndex.state, IndexKey().appending(Int64(s.rawValue))) }
        if let t = filter.objectType { return (KMSIndex.objectType, IndexKey(t.rawValue)) }
        if filter.certificateType != nil { return (KMSIndex.objectType, IndexKey(ManagedObjectType.certificate.rawValue)) }
        return (KMSIndex.created, IndexKey())
    }
}
