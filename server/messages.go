package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
)

// This file keeps what the chat knows of its recent messages, for the
// messages that refer to them (replies), and finds the users a message
// mentions.

// recentMessages is how many of the chat's last messages it keeps what a
// reply needs of (their conversation, sender and start): a reply to an
// older one is refused. Bounded, since every node keeps it and every
// snapshot carries it.
const recentMessages = 10_000

// excerptRunes is how much of a message's text a reply quotes.
const excerptRunes = 100

// maxMentions is how many users one message may mention; past it, the
// rest are plain text.
const maxMentions = 20

// recentMsg is what the chat keeps of a recent message.
type recentMsg struct {
	num     uint64
	conv    string // its conversation (channelConv, privateConv)
	sender  string // as shown
	excerpt string
	// mentions are the keys of the users it mentions, for read marks'
	// counts: shared with the users, nothing of its own but the slice.
	mentions []string
}

// rememberLocked keeps what a reply needs of message num, dropping the
// oldest past recentMessages. Lock must be held.
func (h *hub) rememberLocked(num uint64, conv, sender, text string, mentions []string) {
	if len(h.recent) == recentMessages {
		delete(h.recentByNum, h.recent[0].num)
		h.recent[0] = nil
		h.recent = h.recent[1:]
	}
	m := &recentMsg{num: num, conv: conv, sender: sender, excerpt: excerpt(text), mentions: mentions}
	h.recent = append(h.recent, m)
	h.recentByNum[num] = m
}

// replyLocked is what a message answering message num of conversation
// conv carries of it, or why it cannot answer it. Lock must be held.
func (h *hub) replyToLocked(num uint64, conv string) (*chatv1.ReplyTo, error) {
	m := h.recentByNum[num]
	if m == nil || m.conv != conv {
		return nil, &Error{Kind: ErrNotFound, Msg: "the message answered is not one of this conversation's recent messages"}
	}
	return &chatv1.ReplyTo{Id: h.idPrefix + strconv.FormatUint(num, 10), Sender: m.sender, Excerpt: m.excerpt}, nil
}

// excerpt is the start of text a reply quotes.
func excerpt(text string) string {
	if utf8.RuneCountInString(text) <= excerptRunes {
		return text
	}
	i := 0
	for n := 0; n < excerptRunes-1; n++ {
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return strings.TrimRightFunc(text[:i], unicode.IsSpace) + "…"
}

// mentionWords reads the @names of text, for a message's command, in the
// forms each may name a user by (see clusterv1.MentionWord): the work of
// reading names is the sending node's, outside the hub's lock, and
// bounded (maxMentions words of at most maxMentionForms forms). "@" names
// someone at the start of the text or after a space or punctuation:
// "alice@example.com" names nobody.
func mentionWords(text string) []*clusterv1.MentionWord {
	var words []*clusterv1.MentionWord
	for i := 0; i < len(text) && len(words) < maxMentions; i++ {
		if text[i] != '@' {
			continue
		}
		if i > 0 {
			if r, _ := utf8.DecodeLastRuneInString(text[:i]); !unicode.IsSpace(r) && !unicode.IsPunct(r) {
				continue
			}
		}
		word := text[i+1:]
		if end := strings.IndexFunc(word, unicode.IsSpace); end >= 0 {
			word = word[:end]
		}
		if len(word) == 0 || len(word) > 4*MaxUsernameLength {
			i += len(word) // no name is that long; nor is any name in it
			continue
		}
		mw := &clusterv1.MentionWord{}
		for len(mw.Forms) < maxMentionForms && word != "" {
			mf := &clusterv1.MentionForm{}
			display, key, err := CheckUsername(word)
			if err == nil {
				mf.Key = key
			} else {
				// A name nobody may take (one that mixes scripts, "bоb"
				// with a Cyrillic о) may still look like someone's.
				display, key = word, word
			}
			skels := lookalikeKeys(display, key)
			mf.SkelA, mf.SkelB = skels[0], skels[1]
			mw.Forms = append(mw.Forms, mf)
			r, size := utf8.DecodeLastRuneInString(word)
			if !unicode.IsPunct(r) && !unicode.IsSymbol(r) {
				break
			}
			word = word[:len(word)-size]
		}
		words = append(words, mw)
		i += len(word)
	}
	return words
}

// maxMentionForms is how many forms of one @name are tried: as written, and
// with up to three trailing punctuation marks taken off.
const maxMentionForms = 4

// mentionsLocked resolves a message's @names (see mentionWords) to the
// users they name: a user in the chat, or with sign-in one who has been,
// by its name in any letter case or by one that looks like it. It returns
// them as their names are shown and by key, each once, in the order first
// named. Lock must be held.
func (h *hub) mentionsLocked(words []*clusterv1.MentionWord) (names, keys []string) {
	for _, mw := range words {
		for _, mf := range mw.GetForms() {
			name, key := h.userNamedLocked(mf)
			if key == "" {
				continue
			}
			if !slices.Contains(keys, key) && len(keys) < maxMentions {
				names, keys = append(names, name), append(keys, key)
			}
			break
		}
	}
	return names, keys
}

// userNamedLocked returns the user mf names, shown and by key, or "" for
// none. Lock must be held.
func (h *hub) userNamedLocked(mf *clusterv1.MentionForm) (name, key string) {
	if acct := h.accounts[mf.GetKey()]; mf.GetKey() != "" && acct != nil {
		return acct.name, acct.key
	}
	if per := h.lookalikeLocked([2]string{mf.GetSkelA(), mf.GetSkelB()}); per != nil {
		return per.user.Username, per.key
	}
	return "", ""
}

// recentCopy lists the recent messages for a snapshot. Lock must be held.
func (h *hub) recentCopy() []*clusterv1.RecentMessage {
	out := make([]*clusterv1.RecentMessage, len(h.recent))
	for i, m := range h.recent {
		out[i] = &clusterv1.RecentMessage{Number: m.num, Conv: m.conv, Sender: m.sender, Excerpt: m.excerpt, Mentions: m.mentions}
	}
	return out
}

// restoreRecentLocked takes the recent messages of a snapshot. Lock must
// be held.
func (h *hub) restoreRecentLocked(snap *clusterv1.Snapshot) error {
	for _, pm := range snap.GetRecent() {
		if _, dup := h.recentByNum[pm.GetNumber()]; dup || len(h.recent) == recentMessages {
			return fmt.Errorf("cluster: the snapshot's recent messages repeat message %d, or are too many", pm.GetNumber())
		}
		m := &recentMsg{num: pm.GetNumber(), conv: pm.GetConv(), sender: pm.GetSender(), excerpt: pm.GetExcerpt(), mentions: pm.GetMentions()}
		h.recent = append(h.recent, m)
		h.recentByNum[m.num] = m
	}
	return nil
}
