package server

import (
	"context"
	"slices"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/proto"
)

// This file is a node's liveness in a cluster: each node says it is alive
// (heartbeatLoop), and every node, applying the log, notes whom it heard
// from (heardLocked), gives up for dead the nodes not heard from for the
// node timeout (checkNodesLocked, nodeDownLocked), and holds the users of
// a node that stopped on purpose (nodeStoppedLocked). The functions named
// …Locked must be called with hub.mu held.

// nodeInfo is a node of the cluster as the log shows it.
type nodeInfo struct {
	name      string    // for logs
	lastHeard time.Time // the log's clock at its last command
}

// liveness is how long the log has been heard without a break: a node
// cannot be heard while the log itself is silent (NATS down, or every node
// stopped), so silence counts against a node only from when the log came
// back.
type liveness struct {
	since time.Time // when the log was heard again after a silence
	last  time.Time // the log's clock at the last command
}

// heardLocked notes that node is alive, as of the command being applied.
func (h *hub) heardLocked(node, name string) {
	p := h.nodes[node]
	if p == nil {
		p = &nodeInfo{name: name}
		h.nodes[node] = p
	}
	if name != "" {
		p.name = name
	}
	p.lastHeard = h.now
}

// checkNodesLocked gives up for dead the nodes not heard from for the node
// timeout while the log was live, and parks their users as disconnected.
// Every node sees the same log with the same clock, so every node gives
// up on the same nodes at the same point.
func (h *hub) checkNodesLocked() {
	beat := heartbeatEvery(h.nodeTimeout)
	if h.now.Sub(h.live.last) > 2*beat {
		h.live.since = h.now
	}
	h.live.last = h.now
	var dead []string
	for id, p := range h.nodes {
		heard := p.lastHeard
		if h.live.since.After(heard) {
			heard = h.live.since
		}
		// Found within the timeout of its last beat: its next beat was
		// due a beat later, and the next command here may be a beat late.
		if h.now.Sub(heard) > h.nodeTimeout-2*beat {
			dead = append(dead, id)
		}
	}
	slices.Sort(dead)
	for _, id := range dead {
		h.nodeDownLocked(id)
	}
}

// heartbeatEvery is how often a node says it is alive.
func heartbeatEvery(nodeTimeout time.Duration) time.Duration { return nodeTimeout / 10 }

// heartbeatLoop says the node is alive, ten times per node timeout, and
// keeps Serving up to date.
func (c *Cluster) heartbeatLoop(ctx context.Context) {
	beat := heartbeatEvery(c.cfg.NodeTimeout)
	t := time.NewTicker(beat)
	defer t.Stop()
	for {
		c.updateStatus()
		if c.log.Connected() {
			cmd := c.h.command(&clusterv1.Command{Action: &clusterv1.Command_Heartbeat{Heartbeat: &clusterv1.Heartbeat{Name: c.cfg.Name}}})
			data, err := proto.Marshal(cmd)
			if err == nil {
				actx, cancel := context.WithTimeout(ctx, beat)
				err = c.log.Append(actx, cmd.GetId(), data)
				cancel()
			}
			if err != nil && ctx.Err() == nil {
				c.logger.Warn("heartbeat not appended", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// nodeDownLocked parks, as disconnected, the users whose streams were on a
// node given up for dead. If that node is this one (cut off from the log,
// or frozen, for too long), its streams end: their clients reconnect and
// resume. They end once what they sent that can no longer be carried out
// is refused (see Cluster.cutOffLocked).
func (h *hub) nodeDownLocked(id string) {
	delete(h.nodes, id)
	var cut []*stream
	for per := h.head; per != nil; {
		next := per.next // parking per's last device takes it off the list
		for _, sess := range slices.Clone(per.devices) {
			if sess.state == stateOnline && sess.node == id {
				if s := sess.stream; s != nil {
					cut = append(cut, s)
				}
				h.parkLocked(sess, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
			}
		}
		per = next
	}
	if len(cut) > 0 {
		h.cl.cutOffLocked(cut)
	}
}

// nodeStoppedLocked holds the users whose streams were on a node that
// stopped on purpose: nobody is told unless they are not back in time.
func (h *hub) nodeStoppedLocked(id string) {
	delete(h.nodes, id)
	for per := h.head; per != nil; per = per.next {
		for _, sess := range per.devices {
			if sess.state == stateOnline && sess.node == id {
				h.holdLocked(sess)
			}
		}
	}
}
