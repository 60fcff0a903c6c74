; Stock Dashboard's Windows installer, owned by this project (Tauri's NSIS template cannot be
; built here: see README "Installers"). Compiled on Linux by Debian's makensis through
; scripts/package-windows.sh, which passes:
;   /DVERSION=0.1.0  /DAPP_EXE=...stock-dashboard.exe  /DWATCH_EXE=...stock-watch.exe
;   /DLOADER_DLL=...WebView2Loader.dll  /DICON=...icon.ico  /DOUTFILE=...-setup.exe
;
; What it does, per user and without administrator rights:
; - installs into %LOCALAPPDATA%\Stock Dashboard (or where an earlier install is), with a
;   Start-menu folder (the app, and stock-watch in a console), a desktop shortcut, an
;   uninstaller and the HKCU Uninstall entry;
; - refuses, with the download link, where the WebView2 runtime is missing (exit code 3);
; - asks a running app to quit (`stock-dashboard.exe --quit` reaches it through its
;   single-instance lock) and waits for it before replacing files (exit code 4 if it stays);
; - never touches the app's data (settings, the last known table) or the saved sign-in, so
;   an update keeps them; the uninstaller removes them only when asked to.
;
; Command line (Tauri's updater passes /P /UPDATE [/R /ARGS ...]):
;   /S          silent                    /P       passive (progress only, no questions)
;   /UPDATE     an update: no new desktop shortcut, no finish page
;   /R          start the app when done   /ARGS a b ...  its arguments (the rest of the line)
;   /NS         no desktop shortcut       /D=path  where to install (last, NSIS's own)
; Uninstaller: /S silent (keeps the data), /CLEANDATA removes the data too (also when silent).
; Exit codes: 0 done, 1 cancelled, 2 aborted, 3 WebView2 missing, 4 the app did not quit,
; 5 a file could not be written.

Unicode true
Target amd64-unicode
SetCompressor /SOLID lzma
ManifestDPIAware true
RequestExecutionLevel user

!include MUI2.nsh
!include LogicLib.nsh
!include FileFunc.nsh
!include WordFunc.nsh

!ifndef VERSION & APP_EXE & WATCH_EXE & LOADER_DLL & ICON & OUTFILE
  !error "pass /DVERSION /DAPP_EXE /DWATCH_EXE /DLOADER_DLL /DICON /DOUTFILE (scripts/package-windows.sh does)"
!endif

!define PRODUCT "Stock Dashboard"
!define PUBLISHER "Mediboy"
; Tauri keeps the app's data under folders named after the identifier (tauri.conf.json).
!define IDENTIFIER "com.mediboy.stockdashboard"
!define MAIN_BIN "stock-dashboard.exe"
!define WATCH_BIN "stock-watch.exe"
!define UNINSTALLER "uninstall.exe"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${PRODUCT}"
!define START_MENU "$SMPROGRAMS\${PRODUCT}"
!define WATCH_LINK "Stock Watch (console).lnk"
!define WEBVIEW2_CLIENT "Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"
!define WEBVIEW2_URL "https://go.microsoft.com/fwlink/p/?LinkId=2124703"
; How long a running app gets to quit: 150 x 200 ms.
!define QUIT_TRIES 150

!define EXIT_WEBVIEW2_MISSING 3
!define EXIT_APP_RUNNING 4
!define EXIT_WRITE_FAILED 5

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\${PRODUCT}"
InstallDirRegKey HKCU "${UNINST_KEY}" "InstallLocation"
BrandingText "${PRODUCT} ${VERSION}"
ShowInstDetails nevershow
ShowUninstDetails nevershow

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

Var Passive
Var Update
Var Restart
Var RestartArgs
Var NoShortcut
Var CleanData

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING

!define MUI_PAGE_CUSTOMFUNCTION_PRE SkipWhenPassive
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_PAGE_CUSTOMFUNCTION_PRE SkipWhenPassive
!define MUI_FINISHPAGE_RUN "$INSTDIR\${MAIN_BIN}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT}"
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; Sets $R0 to 1 when the option word $R1 (for example "/P") is one of the space-separated
; words of $R2, else 0 (case-insensitive, as NSIS compares). Whole words only: "/P" does not
; match "/PATH".
!macro DEFINE_HAS_OPTION un
Function ${un}HasOption
  Push $0
  Push $1
  Push $2
  Push $3
  Push $4
  StrCpy $R0 0
  StrCpy $0 " $R2 "
  StrLen $1 $R1
  StrCpy $2 0
  loop:
    StrCpy $3 $0 1 $2
    StrCmp $3 "" done
    ${If} $3 == " "
      IntOp $4 $2 + 1
      StrCpy $3 $0 $1 $4
      IntOp $4 $4 + $1
      StrCpy $4 $0 1 $4
      ${If} $3 == $R1
      ${AndIf} $4 == " "
        StrCpy $R0 1
        Goto done
      ${EndIf}
    ${EndIf}
    IntOp $2 $2 + 1
    Goto loop
  done:
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
FunctionEnd
!macroend
!insertmacro DEFINE_HAS_OPTION ""
!insertmacro DEFINE_HAS_OPTION "un."

!macro OPTION var word
  StrCpy $R1 "${word}"
  Call HasOption
  StrCpy ${var} $R0
!macroend

; Asks a running app to quit and waits until its executable can be written. A second launch
; with --quit reaches the running one (single instance) and makes it exit cleanly (it writes
; the last known table); when none runs, that launch exits at once.
!macro DEFINE_CLOSE_RUNNING_APP un
Function ${un}CloseRunningApp
  Push $0
  Push $1
  IfFileExists "$INSTDIR\${MAIN_BIN}" 0 done
  Exec '"$INSTDIR\${MAIN_BIN}" --quit'
  StrCpy $1 0
  retry:
    ClearErrors
    FileOpen $0 "$INSTDIR\${MAIN_BIN}" a
    ${IfNot} ${Errors}
      FileClose $0
      Goto done
    ${EndIf}
    IntOp $1 $1 + 1
    ${If} $1 < ${QUIT_TRIES}
      Sleep 200
      Goto retry
    ${EndIf}
    ${IfNot} ${Silent}
      MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "${PRODUCT} is still running. Close it (right-click its tray icon, Quit), then choose Retry." /SD IDCANCEL IDRETRY again
    ${EndIf}
    SetErrorLevel ${EXIT_APP_RUNNING}
    Quit
  again:
    StrCpy $1 0
    Goto retry
  done:
  Pop $1
  Pop $0
FunctionEnd
!macroend
!insertmacro DEFINE_CLOSE_RUNNING_APP ""
!insertmacro DEFINE_CLOSE_RUNNING_APP "un."

Function .onInit
  ${GetParameters} $R9
  ; Everything after /ARGS is the restarted app's command line, not ours.
  StrCpy $RestartArgs ""
  ${WordFind} "$R9" "/ARGS" "E+1}" $R8
  ${IfNot} ${Errors}
    StrCpy $RestartArgs $R8
    ${WordFind} "$R9" "/ARGS" "+1{" $R2
  ${Else}
    StrCpy $R2 $R9
  ${EndIf}
  ClearErrors
  !insertmacro OPTION $Passive "/P"
  !insertmacro OPTION $Update "/UPDATE"
  !insertmacro OPTION $Restart "/R"
  !insertmacro OPTION $NoShortcut "/NS"
  Call CheckWebView2
FunctionEnd

; The app cannot start without the WebView2 runtime: say so before anything is written. Read
; as Tauri's template does: the machine-wide client (32-bit registry view), then the user's.
Function CheckWebView2
  ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\${WEBVIEW2_CLIENT}" "pv"
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    ReadRegStr $0 HKLM "SOFTWARE\${WEBVIEW2_CLIENT}" "pv"
  ${EndIf}
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    ReadRegStr $0 HKCU "SOFTWARE\${WEBVIEW2_CLIENT}" "pv"
  ${EndIf}
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    MessageBox MB_YESNO|MB_ICONEXCLAMATION "${PRODUCT} needs the Microsoft Edge WebView2 Runtime, which is not installed on this computer, so nothing was installed.$\r$\n$\r$\nInstall it from ${WEBVIEW2_URL} and run this installer again.$\r$\n$\r$\nOpen the download page now?" /SD IDNO IDNO +2
      ExecShell "open" "${WEBVIEW2_URL}"
    SetErrorLevel ${EXIT_WEBVIEW2_MISSING}
    Quit
  ${EndIf}
FunctionEnd

Function SkipWhenPassive
  ${If} $Passive == 1
  ${OrIf} $Update == 1
    Abort
  ${EndIf}
FunctionEnd

Section "Install"
  Call CloseRunningApp
  SetOutPath "$INSTDIR"
  SetOverwrite on
  ClearErrors
  File "/oname=${MAIN_BIN}" "${APP_EXE}"
  File "/oname=${WATCH_BIN}" "${WATCH_EXE}"
  File "/oname=WebView2Loader.dll" "${LOADER_DLL}"
  WriteUninstaller "$INSTDIR\${UNINSTALLER}"
  ${If} ${Errors}
    MessageBox MB_OK|MB_ICONSTOP "Could not write the files into $INSTDIR." /SD IDOK
    SetErrorLevel ${EXIT_WRITE_FAILED}
    Quit
  ${EndIf}

  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$\"$INSTDIR\${MAIN_BIN}$\""
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" "$\"$INSTDIR\${UNINSTALLER}$\""
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" "$\"$INSTDIR\${UNINSTALLER}$\" /S"
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" "$0"

  ; Shortcuts start in the folder they are created from.
  SetOutPath "$INSTDIR"
  CreateDirectory "${START_MENU}"
  CreateShortcut "${START_MENU}\${PRODUCT}.lnk" "$INSTDIR\${MAIN_BIN}"
  ; Support staff check the feed from the till: a console in the install folder.
  CreateShortcut "${START_MENU}\${WATCH_LINK}" "$SYSDIR\cmd.exe" '/k ""$INSTDIR\${WATCH_BIN}" --help"' "$INSTDIR\${WATCH_BIN}"
  ${If} $Update != 1
  ${AndIf} $NoShortcut != 1
    CreateShortcut "$DESKTOP\${PRODUCT}.lnk" "$INSTDIR\${MAIN_BIN}"
  ${EndIf}
  ; Passive (the updater's /P): progress only, closed when done.
  ${If} $Passive == 1
  ${OrIf} $Update == 1
    SetAutoClose true
  ${EndIf}
SectionEnd

Function .onInstSuccess
  ${If} $Restart == 1
    Exec '"$INSTDIR\${MAIN_BIN}" $RestartArgs'
  ${EndIf}
FunctionEnd

Function un.onInit
  ${GetParameters} $R2
  StrCpy $R1 "/CLEANDATA"
  Call un.HasOption
  StrCpy $CleanData $R0
FunctionEnd

Section "Uninstall"
  Call un.CloseRunningApp
  ${If} $CleanData != 1
  ${AndIfNot} ${Silent}
    MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 "Also remove this computer's ${PRODUCT} settings, its saved sign-in and its last known table?$\r$\n$\r$\nKeep them (No) to reinstall later as it was." IDNO +2
      StrCpy $CleanData 1
  ${EndIf}
  ${If} $CleanData == 1
    ; The sign-in is in Windows Credential Manager: the app removes its own entry.
    ExecWait '"$INSTDIR\${MAIN_BIN}" --forget-credential'
    RMDir /r "$APPDATA\${IDENTIFIER}"
    RMDir /r "$LOCALAPPDATA\${IDENTIFIER}"
  ${EndIf}

  Delete "$INSTDIR\${MAIN_BIN}"
  Delete "$INSTDIR\${WATCH_BIN}"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\${UNINSTALLER}"
  ; Only if empty: never remove what someone else put there.
  RMDir "$INSTDIR"

  Delete "${START_MENU}\${PRODUCT}.lnk"
  Delete "${START_MENU}\${WATCH_LINK}"
  RMDir "${START_MENU}"
  Delete "$DESKTOP\${PRODUCT}.lnk"
  DeleteRegKey HKCU "${UNINST_KEY}"
SectionEnd
