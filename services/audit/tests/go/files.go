// The files the Rust side writes for the interop checks, and Go readers over them.

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

func write(dir, name, content string) {
	report("write "+name, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

func read(dir, name string) []byte {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		report("read "+name, err)
	}
	return data
}

// tileFiles is a tlog.TileReader over the C2SP tile files the Rust side wrote, found through
// its manifest of Go paths (as Rust maps them) to C2SP paths.
type tileFiles struct {
	dir   string
	paths map[string]string
	reads int
}

func (t *tileFiles) Height() int { return tileHeight }

func (t *tileFiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, tile := range tiles {
		c2sp, ok := t.paths[tile.Path()]
		if !ok {
			return nil, fmt.Errorf("the manifest has no C2SP path for Go's %s", tile.Path())
		}
		var err error
		if data[i], err = os.ReadFile(filepath.Join(t.dir, "log", c2sp)); err != nil {
			return nil, err
		}
		t.reads++
	}
	return data, nil
}

func (t *tileFiles) SaveTiles([]tlog.Tile, [][]byte) {}

// readManifest reads "<Go path> <C2SP path>" lines and checks each Go path with
// tlog.ParseTilePath.
func readManifest(dir string) map[string]string {
	paths := map[string]string{}
	scanner := bufio.NewScanner(bytes.NewReader(read(dir, "manifest")))
	var bad error
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 2 {
			bad = fmt.Errorf("bad manifest line %q", scanner.Text())
			continue
		}
		tile, err := tlog.ParseTilePath(fields[0])
		switch {
		case err != nil:
			bad = err
		case tile.H != tileHeight || tile.Path() != fields[0]:
			bad = fmt.Errorf("%s parses to %+v, which Go writes as %s", fields[0], tile, tile.Path())
		}
		paths[fields[0]] = fields[1]
	}
	report(fmt.Sprintf("tlog.ParseTilePath accepts and re-writes all %d Go tile paths", len(paths)), bad)
	return paths
}

// readProofs reads "record <n> <hex,...>" and "tree <n> <hex,...>" lines ("-" for no hashes).
func readProofs(dir string) (records map[int64][]tlog.Hash, trees map[int64][]tlog.Hash) {
	records, trees = map[int64][]tlog.Hash{}, map[int64][]tlog.Hash{}
	for _, line := range strings.Split(strings.TrimSpace(string(read(dir, "proofs"))), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 || (fields[0] != "record" && fields[0] != "tree") {
			report("read proofs", fmt.Errorf("bad line %q", line))
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		var hashes []tlog.Hash
		for _, h := range strings.Split(fields[2], ",") {
			b, herr := hex.DecodeString(h)
			if h == "-" {
				continue
			} else if herr != nil || len(b) != tlog.HashSize {
				err = fmt.Errorf("bad hash %q", h)
			}
			var hash tlog.Hash
			copy(hash[:], b)
			hashes = append(hashes, hash)
		}
		switch {
		case err != nil:
			report("read proofs", err)
		case fields[0] == "record":
			records[n] = hashes
		default:
			trees[n] = hashes
		}
	}
	return records, trees
}

// readEntries reads the entry bundles of a tree of size n, the ones Go's data tiles name.
func readEntries(files tlog.TileReader, n int64) ([][]byte, error) {
	var entries [][]byte
	for start := int64(0); start < n; start += 1 << tileHeight {
		width := n - start
		if width > 1<<tileHeight {
			width = 1 << tileHeight
		}
		tile := tlog.Tile{H: tileHeight, L: -1, N: start >> tileHeight, W: int(width)}
		data, err := files.ReadTiles([]tlog.Tile{tile})
		if err != nil {
			return nil, err
		}
		bundle := data[0]
		for count := int64(0); count < width; count++ {
			if len(bundle) < 2 || len(bundle) < 2+int(binary.BigEndian.Uint16(bundle)) {
				return nil, fmt.Errorf("bundle %s ends early", tile.Path())
			}
			size := 2 + int(binary.BigEndian.Uint16(bundle))
			entries, bundle = append(entries, bundle[2:size]), bundle[size:]
		}
		if len(bundle) != 0 {
			return nil, fmt.Errorf("bundle %s has %d bytes too many", tile.Path(), len(bundle))
		}
	}
	return entries, nil
}

// storedHashes is a tlog.HashReader over all stored hashes of a tree, by stored hash index.
type storedHashes []tlog.Hash

func (s storedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = s[x]
	}
	return out, nil
}
