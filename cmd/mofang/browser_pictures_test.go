package main

import (
	"bytes"
	"context"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserPictures: on "My room" a user picks an avatar and a room
// cover from files; the page shows them as the server stored them
// (/images/...), the room list shows the cover and the avatar, and a text
// file named .png is refused with the server's reason.
func TestBrowserPictures(t *testing.T) {
	chromium := chromiumPath(t)
	needPages(t)
	api, stop := startServe(t, t.TempDir())
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	os.Remove(filepath.Join(shots, "failed-pictures.png"))
	dir := t.TempDir()
	var a, c bytes.Buffer
	png.Encode(&a, testPicture(64, 64))
	jpeg.Encode(&c, testPicture(320, 180), nil)
	files := map[string][]byte{"me.png": a.Bytes(), "cover.jpg": c.Bytes(), "notes.png": []byte("not a picture\n")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startBrowser(t, ctx, chromium, shots)("pictures", nil)
	b.register(site, "alice", "Alice")
	b.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	b.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	b.do("create the room", chromedp.Click("#room-save", chromedp.ByQuery))
	b.wait("the cover button", 10*time.Second, `!document.querySelector('#cover-pick').hidden`)

	b.do("pick an avatar", chromedp.SetUploadFiles("#avatar-file", []string{filepath.Join(dir, "me.png")}, chromedp.ByQuery))
	b.wait("the avatar shown", 10*time.Second, `(i => i && /^\/images\/[0-9a-f]{64}\.png$/.test(i.getAttribute('src')) && i.complete && i.naturalWidth === 64)(document.querySelector('#my-avatar img'))`)
	b.do("pick a cover", chromedp.SetUploadFiles("#cover-file", []string{filepath.Join(dir, "cover.jpg")}, chromedp.ByQuery))
	b.wait("the cover shown", 10*time.Second, `(i => /^\/images\/[0-9a-f]{64}\.jpg$/.test(i.getAttribute('src')) && i.complete && i.naturalWidth === 320)(document.querySelector('#my-cover'))`)
	b.do("pick a text file", chromedp.SetUploadFiles("#avatar-file", []string{filepath.Join(dir, "notes.png")}, chromedp.ByQuery))
	b.wait("the refusal shown", 10*time.Second, `document.querySelector('#pictures-status').textContent.includes('not a PNG, JPEG, GIF or WebP')`)
	b.do("show the pictures", chromedp.ScrollIntoView("#pictures", chromedp.ByQuery))
	b.screenshot("my-pictures.png")
	cover := b.text(`document.querySelector('#my-cover').getAttribute('src')`)
	avatar := b.text(`document.querySelector('#my-avatar img').getAttribute('src')`)

	b.do("back to the list", chromedp.Click("#back", chromedp.ByQuery))
	// The list shows the room's cover in place of the owner's avatar
	// (thumb.js); the avatar is the user's own at the top.
	b.wait("the cover and avatar in the list", 10*time.Second, `document.querySelector('a.room-item .room-thumb img')?.getAttribute('src') === `+quoteJS(cover)+` && document.querySelector('.topbar .me .avatar img')?.getAttribute('src') === `+quoteJS(avatar))
	b.screenshot("room-list-cover.png")
}

// quoteJS is s as a JavaScript string literal (s holds no quote).
func quoteJS(s string) string { return "'" + s + "'" }
