// Command interop checks what hooklog-audit writes against Go's reference implementation of
// signed notes and tiled transparency logs, golang.org/x/mod/sumdb/note and .../sumdb/tlog.
//
// It is built offline from Debian's packages (golang-go, golang-golang-x-mod-dev) by the
// crate's integration test, in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o interop .
//
// Usage:
//
//	interop keygen DIR NAME   write go.skey and go.vkey (note.GenerateKey) and go.note, a note
//	                          signed with that key, to DIR
//	interop check DIR         check the log the Rust side wrote to DIR (see check below)
//	interop served URL VKEY TOKEN OLD
//	                          check the logs a running hooklog serves under URL/v1/audit/
//	                          (see served.go); OLD is a file holding an earlier checkpoint of
//	                          the deliveries log
//
// It prints one line per check, "ok   ..." or "FAIL ...", and exits 1 if any check failed.
package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is C2SP's fixed tile height; Go's tile paths spell it out.
const tileHeight = 8

var failed bool

func report(what string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", what, err)
		return
	}
	fmt.Printf("ok   %s\n", what)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: interop keygen DIR NAME | interop check DIR")
		os.Exit(2)
	}
	switch {
	case os.Args[1] == "keygen" && len(os.Args) == 4:
		keygen(os.Args[2], os.Args[3])
	case os.Args[1] == "check" && len(os.Args) == 3:
		check(os.Args[2])
	case os.Args[1] == "served" && len(os.Args) == 6:
		served(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	default:
		fmt.Fprintln(os.Stderr, "usage: interop keygen DIR NAME | interop check DIR | interop served URL VKEY TOKEN OLD")
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func keygen(dir, name string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	report("note.GenerateKey", err)
	signer, err := note.NewSigner(skey)
	report("note.NewSigner on the generated key", err)
	if err != nil {
		return
	}
	msg, err := note.Sign(&note.Note{Text: "signed by Go's note.Sign\n"}, signer)
	report("note.Sign", err)
	write(dir, "go.skey", skey)
	write(dir, "go.vkey", vkey)
	write(dir, "go.note", string(msg))
}

// checkpoint is an opened C2SP checkpoint: its text and the tree it names.
type checkpoint struct {
	text string
	tree tlog.Tree
}

// openCheckpoint opens a signed checkpoint note with note.Open and parses its three lines.
func openCheckpoint(msg []byte, vkey string) (checkpoint, error) {
	verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return checkpoint{}, err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return checkpoint{}, errors.New("fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	hash, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, err
	}
	return checkpoint{n.Text, tlog.Tree{N: size, Hash: hash}}, nil
}

// checkLeaves checks each entry's record hash against its leaf hash read through reader.
func checkLeaves(reader tlog.HashReader, entries [][]byte) error {
	indexes := make([]int64, len(entries))
	for i := range entries {
		indexes[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := reader.ReadHashes(indexes)
	if err != nil {
		return err
	}
	for i, entry := range entries {
		if tlog.RecordHash(entry) != leaves[i] {
			return fmt.Errorf("entry %d hashes to %s, its tile says %s", i, tlog.RecordHash(entry), leaves[i])
		}
	}
	return nil
}

func equalHashes(a, b []tlog.Hash) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d hashes, not %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("hash %d is %s, not %s", i, a[i], b[i])
		}
	}
	return nil
}

// check runs every check on the log in dir; see the integration test for what it holds.
func check(dir string) {
	paths := readManifest(dir)
	vkey := string(read(dir, "rust.vkey"))
	latest, err := openCheckpoint(read(dir, "checkpoint"), vkey)
	report("note.Open opens the checkpoint with the Rust verifier key", err)
	old, err := openCheckpoint(read(dir, "checkpoint.old"), vkey)
	report("note.Open opens the older checkpoint", err)
	if failed {
		return
	}
	t, n := latest.tree.N, old.tree.N

	signer, err := note.NewSigner(strings.TrimSpace(string(read(dir, "rust.skey"))))
	if err == nil {
		var msg []byte
		msg, err = note.Sign(&note.Note{Text: latest.text}, signer)
		if err == nil && !bytes.Equal(msg, read(dir, "checkpoint")) {
			err = fmt.Errorf("Go's note is %q", msg)
		}
	}
	report("note.NewSigner takes the Rust private key and signs the checkpoint to the same bytes", err)

	files := &tileFiles{dir: dir, paths: paths}
	reader := tlog.TileHashReader(latest.tree, files)
	root, err := tlog.TreeHash(t, reader)
	if err == nil && root != latest.tree.Hash {
		err = fmt.Errorf("root %s, checkpoint says %s", root, latest.tree.Hash)
	}
	report(fmt.Sprintf("tlog.TreeHash(%d) through tlog.TileHashReader equals the checkpoint's root", t), err)
	oldRoot, err := tlog.TreeHash(n, reader)
	if err == nil && oldRoot != old.tree.Hash {
		err = fmt.Errorf("root %s, older checkpoint says %s", oldRoot, old.tree.Hash)
	}
	report(fmt.Sprintf("tlog.TreeHash(%d) over the same tiles equals the older checkpoint's root", n), err)

	entries, err := readEntries(files, t)
	report(fmt.Sprintf("the %d entries read from the bundles Go's data tiles name", len(entries)), err)
	if err != nil {
		return
	}

	// Independently of the tiles: Go's own stored hashes for the entries, its roots and its
	// tiles. (Debian's x/mod 0.7.0 TileHashReader does not authenticate every child tile it
	// reads when several subtrees of the tree share a tile, so it alone would not catch a
	// tampered full tile under a partial parent.)
	stored := storedHashes{}
	for i, entry := range entries {
		hashes, err := tlog.StoredHashes(int64(i), entry, stored)
		if err != nil {
			report("tlog.StoredHashes", err)
			return
		}
		stored = append(stored, hashes...)
	}
	for _, tree := range []tlog.Tree{latest.tree, old.tree} {
		root, err := tlog.TreeHash(tree.N, stored)
		if err == nil && root != tree.Hash {
			err = fmt.Errorf("root %s, checkpoint says %s", root, tree.Hash)
		}
		report(fmt.Sprintf("tlog.TreeHash(%d) from Go's own hashes of the entries equals the checkpoint's root", tree.N), err)
	}
	err = nil
	hashTiles := 0
	for goPath, c2sp := range paths {
		tile, _ := tlog.ParseTilePath(goPath)
		if tile.L < 0 {
			continue
		}
		hashTiles++
		want, rerr := tlog.ReadTileData(tile, stored)
		got, ferr := os.ReadFile(filepath.Join(dir, "log", c2sp))
		switch {
		case rerr != nil:
			err = rerr
		case ferr != nil:
			err = ferr
		case !bytes.Equal(got, want):
			err = fmt.Errorf("%s differs from Go's tile %s", c2sp, goPath)
		}
	}
	report(fmt.Sprintf("tlog.ReadTileData computes all %d hash tiles as Rust wrote them", hashTiles), err)

	report(fmt.Sprintf("tlog.RecordHash of each of the %d bundled entries equals its level-0 tile hash", len(entries)), checkLeaves(reader, entries))

	records, trees := readProofs(dir)
	for i, rustProof := range records {
		proof, err := tlog.ProveRecord(t, i, reader)
		if err == nil {
			err = tlog.CheckRecord(proof, t, latest.tree.Hash, i, tlog.RecordHash(entries[i]))
		}
		report(fmt.Sprintf("tlog.ProveRecord/CheckRecord: entry %d is in the tree of %d", i, t), err)
		err = tlog.CheckRecord(rustProof, t, latest.tree.Hash, i, tlog.RecordHash(entries[i]))
		if err == nil {
			err = equalHashes(rustProof, proof)
		}
		report(fmt.Sprintf("tlog.CheckRecord accepts Rust's proof for entry %d, equal to Go's", i), err)
		wrong := tlog.RecordHash(append([]byte("not "), entries[i]...))
		if tlog.CheckRecord(proof, t, latest.tree.Hash, i, wrong) == nil {
			report(fmt.Sprintf("tlog.CheckRecord refuses another entry at %d", i), errors.New("accepted"))
		}
	}
	for m, rustProof := range trees {
		proof, err := tlog.ProveTree(t, m, reader)
		if err == nil {
			err = tlog.CheckTree(proof, t, latest.tree.Hash, m, old.tree.Hash)
		}
		report(fmt.Sprintf("tlog.ProveTree/CheckTree: the tree of %d extends the tree of %d", t, m), err)
		err = tlog.CheckTree(rustProof, t, latest.tree.Hash, m, old.tree.Hash)
		if err == nil {
			err = equalHashes(rustProof, proof)
		}
		report(fmt.Sprintf("tlog.CheckTree accepts Rust's consistency proof %d -> %d, equal to Go's", m, t), err)
	}

	signedByGo, err := openCheckpoint(read(dir, "go-key.checkpoint"), string(read(dir, "go.vkey")))
	if err == nil && signedByGo.tree != latest.tree {
		err = fmt.Errorf("it names tree %+v", signedByGo.tree)
	}
	report("note.Open opens the checkpoint Rust signed with Go's generated key", err)
	fmt.Printf("read %d tiles through %d Go paths\n", files.reads, len(paths))
}
