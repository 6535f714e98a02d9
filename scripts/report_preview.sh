#!/usr/bin/env bash
# Renders a report .docx to PNG pages, to look at the layout without Word:
#   scripts/report_preview.sh FILE.docx [OUTDIR]
# Installs LibreOffice Writer and poppler-utils if missing, converts the
# document to PDF (LibreOffice, headless), then each page to a PNG at 80 dpi
# (pdftoppm) and lists the PNGs. OUTDIR defaults to FILE's name without .docx
# plus "-preview". The Windows font names the report asks for (宋体, 仿宋, 黑体,
# 楷体) are mapped to the Noto CJK fonts for this run only, so the pages show
# serif body text and sans headings as Word would, not a single fallback face.
set -euo pipefail
source "$(dirname "$0")/env.sh"

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 FILE.docx [OUTDIR]"
docx=$1
[[ -f "$docx" ]] || die "no such file: $docx"
[[ "$docx" == *.docx ]] || die "not a .docx: $docx"
outdir=${2:-${docx%.docx}-preview}
mkdir -p "$outdir"

need_apt libreoffice-writer poppler-utils fonts-noto-cjk fonts-liberation
command -v libreoffice >/dev/null || die "libreoffice not on PATH after install"
command -v pdftoppm >/dev/null || die "pdftoppm not on PATH after install"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fontconfig for this run: the system's configuration plus aliases for the
# Chinese office font names
cat > "$work/fonts.conf" <<'XML'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <alias binding="same"><family>宋体</family><prefer><family>Noto Serif CJK SC</family></prefer></alias>
  <alias binding="same"><family>SimSun</family><prefer><family>Noto Serif CJK SC</family></prefer></alias>
  <alias binding="same"><family>仿宋</family><prefer><family>Noto Serif CJK SC</family></prefer></alias>
  <alias binding="same"><family>FangSong</family><prefer><family>Noto Serif CJK SC</family></prefer></alias>
  <alias binding="same"><family>楷体</family><prefer><family>Noto Serif CJK SC</family></prefer></alias>
  <alias binding="same"><family>KaiTi</family><prefer><family>Noto Serif CJK SC</family></prefer></alias>
  <alias binding="same"><family>黑体</family><prefer><family>Noto Sans CJK SC</family></prefer></alias>
  <alias binding="same"><family>SimHei</family><prefer><family>Noto Sans CJK SC</family></prefer></alias>
  <alias binding="same"><family>Times New Roman</family><prefer><family>Liberation Serif</family><family>DejaVu Serif</family></prefer></alias>
</fontconfig>
XML

name=$(basename "${docx%.docx}")
log "converting $docx to PDF"
# a profile of its own, so a LibreOffice the user has open does not take the job
FONTCONFIG_FILE="$work/fonts.conf" libreoffice --headless \
  "-env:UserInstallation=file://$work/profile" \
  --convert-to pdf --outdir "$outdir" "$docx" >"$work/convert.log" 2>&1 \
  || { cat "$work/convert.log" >&2; die "libreoffice could not convert $docx"; }
[[ -f "$outdir/$name.pdf" ]] || { cat "$work/convert.log" >&2; die "no PDF written"; }

rm -f "$outdir/$name"-*.png
pdftoppm -png -r 80 "$outdir/$name.pdf" "$outdir/$name"
log "pages of $outdir/$name.pdf:"
ls -1 "$outdir/$name"-*.png
