from registry.projection import compile_fields, project

RECORD = {
    "so_dinh_danh": "012090001234",
    "ho_va_ten": "Lò Văn Minh",
    "noi_thuong_tru": {"ma_xa": "03388", "ten_xa": "Phường Đoàn Kết", "ma_tinh": "12"},
    "cong_dan": [{"ho_va_ten": "A", "dan_toc": "Thái"}, {"ho_va_ten": "B", "dan_toc": "Mông"}],
}


def test_star_keeps_everything():
    assert compile_fields(["*"]) is None
    assert project(RECORD, None) == RECORD


def test_top_level_and_dotted_paths():
    tree = compile_fields(["ho_va_ten", "noi_thuong_tru.ma_xa"])
    assert project(RECORD, tree) == {
        "ho_va_ten": "Lò Văn Minh",
        "noi_thuong_tru": {"ma_xa": "03388"},
    }


def test_lists_are_projected_item_by_item():
    assert project(RECORD, compile_fields(["cong_dan.ho_va_ten"])) == {
        "cong_dan": [{"ho_va_ten": "A"}, {"ho_va_ten": "B"}]
    }
    assert project([RECORD, RECORD], compile_fields(["ho_va_ten"])) == [
        {"ho_va_ten": "Lò Văn Minh"},
        {"ho_va_ten": "Lò Văn Minh"},
    ]


def test_a_whole_subtree_wins_over_a_narrower_path():
    for fields in (
        ["noi_thuong_tru", "noi_thuong_tru.ma_xa"],
        ["noi_thuong_tru.ma_xa", "noi_thuong_tru"],
    ):
        assert project(RECORD, compile_fields(fields)) == {
            "noi_thuong_tru": RECORD["noi_thuong_tru"]
        }


def test_absent_fields_and_scalars():
    assert project(RECORD, compile_fields(["missing", "ho_va_ten.x"])) == {
        "ho_va_ten": "Lò Văn Minh"
    }
    assert project("text", compile_fields(["a"])) == "text"
    assert project(RECORD, compile_fields([])) == {}  # a grant of no fields shows nothing
