import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createFilter } from '../../src/watch/filters.ts';

describe('createFilter', () => {
  const keepAll = createFilter();

  it('drops every default-ignored name, wherever it is', () => {
    const ignored = [
      '.DS_Store', '._clip.mov', 'Thumbs.db', 'THUMBS.DB', 'desktop.ini', 'render.tmp', 'RENDER.TMP',
      'x.part', 'movie.mov.crdownload', '.~lock.edit.odt#', '~$script.docx', '.hidden.mov',
      'reel1/.DS_Store', 'reel1/sub/x.part', 'reel1/~$notes.docx',
    ];
    for (const rel of ignored) assert.equal(keepAll(rel, false), false, rel);
  });

  it('keeps ordinary media files and folders', () => {
    for (const rel of ['cut.mov', 'ep101/reel2/cut_v3.mxf', 'a.partial.mov', 'tmp/x.mov', 'notes~.txt']) {
      assert.equal(keepAll(rel, false), true, rel);
    }
    for (const rel of ['ep101', 'ep101/reel2', 'tmp', 'x.part']) assert.equal(keepAll(rel, true), true, rel);
  });

  it("ignores postflow's own after-upload traces: sidecars anywhere, the _uploaded folder at the top only", () => {
    for (const rel of ['cut.mov.postflow.json', 'ep101/reel2/CUT.MOV.POSTFLOW.JSON', '_uploaded/cut.mov', '_uploaded/ep101/cut.mov']) {
      assert.equal(keepAll(rel, false), false, rel);
    }
    assert.equal(keepAll('_uploaded', true), false, 'the folder is not even descended');
    assert.equal(keepAll('ep101/_uploaded', true), true, 'only the one at the top of the watch folder is reserved');
    assert.equal(keepAll('ep101/_uploaded/cut.mov', false), true);
    assert.equal(keepAll('cut.postflow.json.mov', false), true);
  });

  it('never descends hidden folders and drops files below them', () => {
    assert.equal(keepAll('.git', true), false);
    assert.equal(keepAll('ep101/.cache', true), false);
    assert.equal(keepAll('ep101/.cache/clip.mov', false), false);
  });

  it('keeps only included files when include is given, still descending folders', () => {
    const f = createFilter({ include: ['*.mov', 'deliveries/**/*.mxf'] });
    assert.equal(f('cut.mov', false), true);
    assert.equal(f('ep101/reel2/CUT.MOV', false), true, 'base-name match, case-insensitive');
    assert.equal(f('cut.mp4', false), false);
    assert.equal(f('deliveries/a/b.mxf', false), true);
    assert.equal(f('other/b.mxf', false), false);
    assert.equal(f('anything', true), true);
    assert.equal(f('.DS_Store', false), false, 'defaults still apply');
    assert.equal(f('x.mov.part', false), false);
  });

  it('excludes files and whole folders by glob', () => {
    const f = createFilter({ exclude: ['proxies', 'renders/**', '*_preview.mov', '**/cache/**'] });
    assert.equal(f('proxies', true), false);
    assert.equal(f('ep101/proxies', true), false, 'a pattern without / matches the base name');
    assert.equal(f('renders', true), false, 'folder/** excludes the folder itself');
    assert.equal(f('renders/a.mov', false), false);
    assert.equal(f('ep1/cut_preview.mov', false), false);
    assert.equal(f('ep1/cut.mov', false), true);
    assert.equal(f('ep1/cache', true), false);
    assert.equal(f('ep1/reel', true), true);
  });

  it('lets exclude win over include', () => {
    const f = createFilter({ include: ['**/*.mov'], exclude: ['old/**'] });
    assert.equal(f('new/a.mov', false), true);
    assert.equal(f('old/a.mov', false), false);
    assert.equal(f('old', true), false);
  });
});
