// The checks of a log served over HTTP by a running hooklog, as any monitor would read it.

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// httpTiles is a tlog.TileReader over one log served as C2SP tlog-tiles: Go's tile paths
// (tile/8/L/N, tile/8/data/N) mapped to C2SP's (tile/L/N, tile/entries/N).
type httpTiles struct {
	base  string // .../v1/audit/<log>/
	token string // sent for entry bundles only
	reads int
}

func (h *httpTiles) Height() int { return tileHeight }

func c2spPath(tile tlog.Tile) string {
	path := strings.Replace(tile.Path(), fmt.Sprintf("tile/%d/", tileHeight), "tile/", 1)
	return strings.Replace(path, "tile/data/", "tile/entries/", 1)
}

func (h *httpTiles) get(path, token string) (int, []byte, error) {
	request, err := http.NewRequest(http.MethodGet, h.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		request.Header.Set("Authorization", "Bearer "+token)
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		return 0, nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	return response.StatusCode, body, err
}

func (h *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, tile := range tiles {
		token := ""
		if tile.L < 0 {
			token = h.token
		}
		status, body, err := h.get(c2spPath(tile), token)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET %s: %d %s", c2spPath(tile), status, body)
		}
		if err != nil {
			return nil, err
		}
		data[i] = body
		h.reads++
	}
	return data, nil
}

func (h *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func served(url, vkeyFile, token, oldFile string) {
	vkeyText, err := os.ReadFile(vkeyFile)
	report("read the verifier key file", err)
	vkey := strings.TrimSpace(string(vkeyText))
	keys := &httpTiles{base: url + "/v1/audit/"}
	status, body, err := keys.get("key", "")
	if err == nil && (status != http.StatusOK || strings.TrimSpace(string(body)) != vkey) {
		err = fmt.Errorf("%d %q", status, body)
	}
	report("GET /v1/audit/key serves the verifier key", err)
	name := strings.SplitN(vkey, "+", 2)[0]
	for _, log := range []string{"deliveries", "events"} {
		tiles := &httpTiles{base: url + "/v1/audit/" + log + "/", token: token}
		status, msg, err := tiles.get("checkpoint", "")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("%d %s", status, msg)
		}
		var latest checkpoint
		if err == nil {
			latest, err = openCheckpoint(msg, vkey)
		}
		if err == nil && !strings.HasPrefix(latest.text, name+"/"+log+"\n") {
			err = fmt.Errorf("origin of %q", latest.text)
		}
		report(fmt.Sprintf("%s: note.Open opens the served checkpoint under the verifier key, origin %s/%s", log, name, log), err)
		if err != nil {
			continue
		}
		n := latest.tree.N
		reader := tlog.TileHashReader(latest.tree, tiles)
		root, err := tlog.TreeHash(n, reader)
		if err == nil && root != latest.tree.Hash {
			err = fmt.Errorf("root %s, checkpoint says %s", root, latest.tree.Hash)
		}
		report(fmt.Sprintf("%s: tlog.TreeHash(%d) through tlog.TileHashReader over HTTP equals the checkpoint's root", log, n), err)

		first := 256
		if n < 256 {
			first = int(n)
		}
		status, _, err = tiles.get(c2spPath(tlog.Tile{H: tileHeight, L: -1, N: 0, W: first}), "")
		if err == nil && status != http.StatusUnauthorized {
			err = fmt.Errorf("answered %d without a token", status)
		}
		report(fmt.Sprintf("%s: entry bundles need a token (401 without)", log), err)

		entries, err := readEntries(tiles, n)
		report(fmt.Sprintf("%s: the %d served entries read from the bundles Go's data tiles name", log, len(entries)), err)
		if err != nil {
			continue
		}
		report(fmt.Sprintf("%s: tlog.RecordHash of each served entry equals its served level-0 tile hash", log), checkLeaves(reader, entries))
		stored := storedHashes{}
		for i, entry := range entries {
			hashes, err := tlog.StoredHashes(int64(i), entry, stored)
			if err != nil {
				report("tlog.StoredHashes", err)
				return
			}
			stored = append(stored, hashes...)
		}
		root, err = tlog.TreeHash(n, stored)
		if err == nil && root != latest.tree.Hash {
			err = fmt.Errorf("root %s, checkpoint says %s", root, latest.tree.Hash)
		}
		report(fmt.Sprintf("%s: tlog.TreeHash(%d) from Go's own hashes of the served entries equals the checkpoint's root", log, n), err)
		for _, i := range []int64{0, n / 2, n - 1} {
			proof, err := tlog.ProveRecord(n, i, reader)
			if err == nil {
				err = tlog.CheckRecord(proof, n, latest.tree.Hash, i, tlog.RecordHash(entries[i]))
			}
			report(fmt.Sprintf("%s: tlog.ProveRecord/CheckRecord over HTTP: entry %d is in the tree of %d", log, i, n), err)
		}
		if log != "deliveries" {
			continue
		}
		oldMsg, err := os.ReadFile(oldFile)
		var old checkpoint
		if err == nil {
			old, err = openCheckpoint(oldMsg, vkey)
		}
		if err == nil && old.tree.N >= n {
			err = errors.New("the older checkpoint is not older")
		}
		var proof tlog.TreeProof
		if err == nil {
			proof, err = tlog.ProveTree(n, old.tree.N, reader)
		}
		if err == nil {
			err = tlog.CheckTree(proof, n, latest.tree.Hash, old.tree.N, old.tree.Hash)
		}
		report(fmt.Sprintf("%s: tlog.ProveTree/CheckTree over HTTP: the served tree extends the earlier checkpoint", log), err)
		fmt.Printf("%s: read %d tiles over HTTP\n", log, tiles.reads)
	}
}
