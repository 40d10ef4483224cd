import CAvahi
import Logging
import ModelCacheCore

extension AvahiSession {
    /// Renames tried in one go before giving up until the next state change.
    static let maxRenamesPerAttempt = 16

    /// Adds and commits our service if the client runs and the group is empty (new client,
    /// after a reset or a collision). Does nothing when browsing only.
    func ensurePublished() {
        guard publication != nil, isRunning, let client else { return }
        if group == nil {
            guard let g = avahi_entry_group_new(client, avahiEntryGroupCallback, userdata) else {
                logger.warning("mDNS: cannot create the entry group", metadata: ["mdns.error": "\(AvahiInterop.clientError(client))"])
                return
            }
            group = g
        }
        guard let group else { return }
        let empty = avahi_entry_group_is_empty(group)
        guard empty > 0 else {
            if empty < 0 { logger.warning("mDNS: entry group query failed", metadata: ["mdns.error": "\(AvahiInterop.errorString(empty))"]) }
            return
        }
        for _ in 0..<Self.maxRenamesPerAttempt {
            guard let pub = publication else { return }
            let added = AvahiInterop.withStringList(pub.txt.encode()) { txt in
                avahi_entry_group_add_service_strlst(
                    group, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), AvahiPublishFlags(0),
                    pub.name, Self.serviceType, nil, nil, pub.port, txt)
            }
            if added == Int32(AVAHI_ERR_COLLISION) {
                // Another service on this host already has the name.
                rename(reason: "local collision")
                continue
            }
            guard added >= 0 else {
                logger.warning("mDNS: cannot add our service", metadata: ["mdns.error": "\(AvahiInterop.errorString(added))", "mdns.name": "\(pub.name)"])
                return
            }
            let committed = avahi_entry_group_commit(group)
            if committed < 0 {
                logger.warning("mDNS: cannot commit our service", metadata: ["mdns.error": "\(AvahiInterop.errorString(committed))"])
            } else {
                logger.debug("mDNS: publishing", metadata: ["mdns.name": "\(pub.name)", "mdns.port": "\(pub.port)", "mdns.txt": "\(pub.txt)"])
            }
            return
        }
        logger.warning("mDNS: too many name collisions; will retry on the next state change")
    }

    func entryGroupStateChanged(_ g: OpaquePointer, _ state: AvahiEntryGroupState) {
        group = g
        switch state {
        case AVAHI_ENTRY_GROUP_ESTABLISHED:
            if let pub = publication {
                logger.info("mDNS: service published", metadata: ["mdns.name": "\(pub.name)", "mdns.port": "\(pub.port)"])
            }
            if txtDeferred { applyTXTUpdate() }
        case AVAHI_ENTRY_GROUP_COLLISION:
            // Someone on the network has our name: pick "name #2", "name #3", ... and re-add.
            rename(reason: "collision on the network")
            avahi_entry_group_reset(g)
            ensurePublished()
        case AVAHI_ENTRY_GROUP_FAILURE:
            logger.warning("mDNS: publishing failed", metadata: ["mdns.error": "\(AvahiInterop.clientError(client))"])
        default:
            break
        }
    }

    private func rename(reason: String) {
        guard let old = publication?.name else { return }
        let new = AvahiInterop.alternativeServiceName(old)
        publication?.name = new
        logger.info("mDNS: service name in use, renaming", metadata: ["mdns.name": "\(old)", "mdns.new_name": "\(new)", "mdns.reason": "\(reason)"])
    }

    /// Called with the poll lock held, from another thread (``AvahiDiscovery/update(txt:)``):
    /// records the new TXT and lets the poll thread apply it, so the caller never waits on D-Bus.
    /// Several quick updates collapse into one.
    func requestTXTUpdate(_ txt: PeerTXT) {
        guard publication != nil else { return }
        publication?.txt = txt
        armTXTTimer()
    }

    /// On the poll thread: puts the current TXT record on the published service.
    func applyTXTUpdate() {
        // Not published right now: the next ensurePublished() uses the new record anyway.
        guard isRunning, let group, let pub = publication else { return }
        if avahi_entry_group_is_empty(group) != 0 {
            ensurePublished()
            return
        }
        // While avahi is still probing the name, a changed TXT record looks like a conflicting record for our own
        // name and the service gets renamed ("name #2"): wait until it is established (the state callback applies it).
        guard avahi_entry_group_get_state(group) == Int32(AVAHI_ENTRY_GROUP_ESTABLISHED.rawValue) else {
            txtDeferred = true
            return
        }
        txtDeferred = false
        let updated = AvahiInterop.withStringList(pub.txt.encode()) { list in
            avahi_entry_group_update_service_txt_strlst(
                group, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), AvahiPublishFlags(0),
                pub.name, Self.serviceType, nil, list)
        }
        if updated < 0 {
            logger.info("mDNS: TXT update failed, re-publishing", metadata: ["mdns.error": "\(AvahiInterop.errorString(updated))"])
            avahi_entry_group_reset(group)
            ensurePublished()
        } else {
            logger.debug("mDNS: TXT updated", metadata: ["mdns.txt": "\(pub.txt)"])
        }
    }
}
